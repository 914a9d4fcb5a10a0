'use strict';

const logger = require('./logger');
const { defect } = require('./defects');

/** An error whose status, code and message are safe to show to the client. */
class HttpError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.extra = extra;
    this.expose = true;
  }
}

const badRequest = (code, message, extra) => new HttpError(400, code, message, extra);

function errorBody(req, code, message, extra = {}) {
  return {
    success: false,
    error: { code, message, ...extra },
    requestId: req.id,
    timestamp: new Date().toISOString(),
  };
}

// Express error middleware: our HttpErrors go out as they are; everything
// else is logged in full here and answered with a generic body.
// eslint-disable-next-line no-unused-vars
function errorHandler(err, req, res, next) {
  if (res.headersSent) {
    logger.error('error after headers sent', { requestId: req.id, err });
    return;
  }
  if (err instanceof HttpError) {
    res.status(err.status).json(errorBody(req, err.code, err.message, err.extra));
    return;
  }
  // body-parser errors (malformed JSON, too large, bad charset) carry a 4xx.
  if (err.type && Number.isInteger(err.status) && err.status >= 400 && err.status < 500) {
    res.status(err.status).json(errorBody(req, 'invalid_body', 'Request body could not be parsed'));
    return;
  }
  logger.error('unhandled error', { requestId: req.id, path: req.path, err, stack: err.stack });
  const extra = {};
  if (defect('leaky-errors')) {
    extra.details = err.message;
    extra.stack = err.stack;
  }
  res.status(500).json(errorBody(req, 'internal_error', 'Something went wrong', extra));
}

/** Wrap an async route handler so a rejection reaches errorHandler. */
const asyncHandler = (fn) => (req, res, next) => Promise.resolve(fn(req, res, next)).catch(next);

module.exports = { HttpError, badRequest, errorHandler, asyncHandler, errorBody };
