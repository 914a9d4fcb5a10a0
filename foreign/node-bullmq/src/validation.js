'use strict';

// A request body is read by a table of field readers: each takes the raw
// value and returns what the route uses, or throws a 400 naming the field.

const { badRequest } = require('./errors');

const MAX_TOKENS = 1_000_000_000;
// Canonical whole numbers only: no sign, no leading zero, no spaces, no exponent.
const DIGITS = /^[1-9][0-9]{0,9}$/;

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** A JSON integer or a canonical digit string, 1..10^9; null otherwise. */
function parseTokens(value) {
  const n = typeof value === 'string' && DIGITS.test(value) ? Number(value) : value;
  return Number.isSafeInteger(n) && n >= 1 && n <= MAX_TOKENS ? n : null;
}

const fieldError = (field, what) => badRequest('invalid_field', `${field} must be ${what}`, { field });

const text = (max = 200) => (value, field) => {
  if (typeof value === 'string' && value.length > 0 && value.length <= max) return value;
  throw fieldError(field, `a non-empty string of at most ${max} characters`);
};

const optional = (reader) => (value, field) => (value === undefined || value === null ? null : reader(value, field));

const READERS = {
  tokens(value) {
    const n = parseTokens(value);
    if (n !== null) return n;
    throw badRequest('invalid_token_amount', `tokenAmount must be a whole number of tokens from 1 to ${MAX_TOKENS}`);
  },
  text: text(),
  key: optional(text()),
  // Call ids come from the call service: a string, or an integer we keep as text.
  callId: (value, field) => (Number.isSafeInteger(value) ? String(value) : text()(value, field)),
};

/** Read `body` by `shape` ({ field: reader name }), in the shape's order. */
function readBody(body, shape) {
  if (!isObject(body)) throw badRequest('invalid_body', 'The request body must be a JSON object');
  const out = {};
  for (const [field, reader] of Object.entries(shape)) out[field] = READERS[reader](body[field], field);
  return out;
}

module.exports = { isObject, readBody };
