'use strict';

const logger = require('./logger');

/** An error whose status, code and message may be shown to the client. */
class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const badRequest = (code, message, details) => new ApiError(400, code, message, details);

function errorBody(req, code, message, details) {
  const error = { code, message };
  if (details) error.details = details;
  return { success: false, error, requestId: req.id };
}

// Last Express middleware. ApiErrors go out as they are; body-parser's 4xx
// become invalid_body; anything else is logged here and answered with a
// generic 500 that names nothing internal.
// eslint-disable-next-line no-unused-vars
function errorHandler(err, req, res, next) {
  if (res.headersSent) {
    logger.error('error after the answer started', { requestId: req.id, err });
    return;
  }
  if (err instanceof ApiError) {
    res.status(err.status).json(errorBody(req, err.code, err.message, err.details));
    return;
  }
  const status = Number.isInteger(err.status) ? err.status : Number.isInteger(err.statusCode) ? err.statusCode : 0;
  if (err.type && status >= 400 && status < 500) {
    res.status(status).json(errorBody(req, 'invalid_body', 'The request body could not be read'));
    return;
  }
  logger.error('request failed', { requestId: req.id, method: req.method, path: req.path, err });
  res.status(500).json(errorBody(req, 'internal_error', 'Something went wrong on our side'));
}

module.exports = { ApiError, badRequest, errorBody, errorHandler };
