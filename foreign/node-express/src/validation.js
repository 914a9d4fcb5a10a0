'use strict';

const { badRequest } = require('./errors');
const { defect } = require('./defects');

const MAX_TOKENS = 1_000_000_000;
const CANONICAL_DIGITS = /^[1-9][0-9]{0,9}$/;

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The body must be a JSON object. */
function requireObjectBody(body) {
  if (!isPlainObject(body)) throw badRequest('invalid_body', 'Request body must be a JSON object');
  return body;
}

/**
 * Whole tokens: a JSON integer or a canonical decimal string, 1..10^9.
 * Returns a JS number or null. No parseInt/Number() leniency.
 */
function parseTokenAmount(value) {
  let n;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) return null;
    n = value;
  } else if (typeof value === 'string') {
    if (!CANONICAL_DIGITS.test(value)) return null;
    n = Number(value);
  } else {
    return null;
  }
  return n >= 1 && n <= MAX_TOKENS ? n : null;
}

/** What the old code did: parseInt, so "12abc" is 12 and "1e3" is 1. */
function lenientTokenAmount(value) {
  const n = Number.parseInt(value, 10);
  return Number.isInteger(n) && n > 0 ? n : null;
}

function requireTokenAmount(value, { lenient = false } = {}) {
  const n = lenient && defect('lenient-amounts') ? lenientTokenAmount(value) : parseTokenAmount(value);
  if (n === null) {
    throw badRequest('invalid_token_amount', 'tokenAmount must be a whole number of tokens (1 to 1000000000)');
  }
  return n;
}

function requireString(value, field, { max = 200 } = {}) {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw badRequest('invalid_field', `${field} must be a non-empty string of at most ${max} characters`, { field });
  }
  return value;
}

function optionalIdempotencyKey(value) {
  if (value === undefined || value === null) return null;
  return requireString(value, 'clientIdempotencyKey', { max: 200 });
}

/** Call ids come from the calling service: a string or an integer. */
function requireCallId(value) {
  if (Number.isSafeInteger(value)) return String(value);
  return requireString(value, 'callId');
}

module.exports = {
  isPlainObject,
  requireObjectBody,
  parseTokenAmount,
  requireTokenAmount,
  requireString,
  optionalIdempotencyKey,
  requireCallId,
};
