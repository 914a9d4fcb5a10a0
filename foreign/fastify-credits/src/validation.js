// Hand-written input checks (we keep JSON schemas out of the routes: the
// messages are ours and the amount rules are stricter than a schema's).

import { badRequest } from './errors.js';
import { defect } from './defects.js';

export const MAX_CREDITS = 1_000_000_000;
export const MAX_TEXT = 200;
export const MAX_IDEMPOTENCY_KEY = 255;

const CANONICAL_DIGITS = /^[1-9][0-9]{0,9}$/; // ASCII only, no sign, no padding, no leading zero

export function requireObject(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('invalid_body', 'The request body must be a JSON object');
  }
  return body;
}

/**
 * A credit amount: a JSON integer (not a boolean) or a canonical digit string,
 * 1..10^9. "0100", " 5", "1e3", "1.5", "12abc", 1.5, true, null -> 400.
 */
export function parseCredits(value, field) {
  if (defect('lenient-credits')) {
    // The quick version: parseInt and a positivity check.
    const n = parseInt(value, 10);
    if (!n || n < 1) throw badRequest('invalid_amount', `${field} must be a positive number of credits`);
    return n;
  }
  let n = null;
  if (typeof value === 'number' && Number.isSafeInteger(value)) n = value;
  else if (typeof value === 'string' && CANONICAL_DIGITS.test(value)) n = Number(value);
  if (n === null || n < 1 || n > MAX_CREDITS) {
    throw badRequest('invalid_amount', `${field} must be a whole number of credits from 1 to ${MAX_CREDITS}`);
  }
  return n;
}

/** A non-empty string of at most 200 characters. */
export function requireText(value, field) {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT) {
    throw badRequest('invalid_field', `${field} must be a non-empty string of at most ${MAX_TEXT} characters`);
  }
  return value;
}

/** The optional Idempotency-Key header: absent, or 1..255 characters. */
export function idempotencyKeyOf(request) {
  const key = request.headers['idempotency-key'];
  if (key === undefined) return null;
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY) {
    throw badRequest('invalid_idempotency_key', `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`);
  }
  return key;
}
