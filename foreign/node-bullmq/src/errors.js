'use strict';

// Refusals are values: `refusal(status, code, message, details)` is what a
// route answers (and what an idempotency key replays); `Refused` carries one
// up to the error middleware. Anything else that reaches it is our fault: it is
// logged in full and answered with a generic 500 that names nothing internal.

const logger = require('./logger');

const refusal = (status, code, message, details) => ({
  status,
  body: { success: false, error: details ? { code, message, details } : { code, message } },
});

class Refused extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'Refused';
    this.outcome = refusal(status, code, message, details);
  }
}

const badRequest = (code, message, details) => new Refused(400, code, message, details);

/** body-parser's own 4xx errors carry a `type` and a status: the body was unreadable. */
const unreadableBody = (err) => typeof err.type === 'string' && err.status >= 400 && err.status < 500;

function outcomeOf(err, req) {
  if (err instanceof Refused) return err.outcome;
  if (unreadableBody(err)) {
    return refusal(err.status, 'invalid_body', 'The request body could not be read');
  }
  logger.error('request failed', { requestId: req.id, method: req.method, path: req.path, err });
  return refusal(500, 'internal_error', 'Something went wrong on our side');
}

// The last middleware (Express knows it by its four parameters).
// eslint-disable-next-line no-unused-vars
function errorMiddleware(err, req, res, next) {
  if (res.headersSent) {
    logger.error('error after the answer started', { requestId: req.id, err });
    return;
  }
  const { status, body } = outcomeOf(err, req);
  res.status(status).json({ ...body, requestId: req.id });
}

module.exports = { refusal, Refused, badRequest, errorMiddleware };
