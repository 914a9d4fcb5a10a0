// One error shape for every answer that is not a success:
//   {"error": {"code": "...", "message": "..."}}
// 4xx messages are ours and safe to show; a 5xx never carries what went wrong
// inside (driver, SQL, Stripe text, stacks): that goes to the log only.

import { defect } from './defects.js';

export class ApiError extends Error {
  constructor(statusCode, code, message, extra = undefined) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
    this.extra = extra; // top-level fields next to "error"
  }

  toBody() {
    return { error: { code: this.code, message: this.message }, ...(this.extra || {}) };
  }
}

export const badRequest = (code, message) => new ApiError(400, code, message);
export const notFound = (code, message) => new ApiError(404, code, message);
export const conflict = (code, message) => new ApiError(409, code, message);

export function errorBody(code, message, extra = {}) {
  return { error: { code, message }, ...extra };
}

// Fastify's own client errors (body parsing, sizes, media types), in our words.
const FASTIFY_CLIENT_ERRORS = {
  FST_ERR_CTP_EMPTY_JSON_BODY: ['invalid_body', 'The request body is empty'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['invalid_body', 'The request body is not valid JSON'],
  FST_ERR_CTP_BODY_TOO_LARGE: ['body_too_large', 'The request body is too large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['unsupported_media_type', 'Send the body as application/json'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['invalid_body', 'The request body does not match its Content-Length'],
};

/** Debug details some teams leave in 5xx bodies (the leaky-errors defect). */
export function debugDetails(err) {
  if (!defect('leaky-errors') || !err) return {};
  return { detail: String(err.message), stack: String(err.stack || '') };
}

export function errorHandler(err, request, reply) {
  if (err instanceof ApiError) {
    if (err.statusCode >= 500) request.log.error({ err }, 'request failed');
    return reply.code(err.statusCode).send(err.toBody());
  }
  const status = err.statusCode;
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    const [code, message] = FASTIFY_CLIENT_ERRORS[err.code]
      || (err instanceof SyntaxError ? ['invalid_body', 'The request body is not valid JSON'] : ['bad_request', 'The request could not be read']);
    request.log.info({ code: err.code, status }, 'client error');
    return reply.code(status).send(errorBody(code, message));
  }
  request.log.error({ err }, 'unhandled error');
  return reply.code(500).send(errorBody('internal_error', 'Something went wrong on our side', debugDetails(err)));
}

export function notFoundHandler(request, reply) {
  reply.code(404).send(errorBody('route_not_found', `No route ${request.method} ${request.url.split('?')[0]}`));
}
