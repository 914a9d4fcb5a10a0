'use strict';

const { badRequest } = require('./errors');

const MAX_TOKENS = 1_000_000_000;
// Canonical whole numbers only: no sign, no leading zero, no spaces, no exponent.
const DIGITS = /^[1-9][0-9]{0,9}$/;

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

function objectBody(body) {
  if (!isObject(body)) throw badRequest('invalid_body', 'The request body must be a JSON object');
  return body;
}

/** A JSON integer or a canonical digit string, 1..10^9; null otherwise. */
function parseTokens(value) {
  let n = null;
  if (typeof value === 'number' && Number.isSafeInteger(value)) n = value;
  else if (typeof value === 'string' && DIGITS.test(value)) n = Number(value);
  return n !== null && n >= 1 && n <= MAX_TOKENS ? n : null;
}

function tokenAmount(value) {
  const n = parseTokens(value);
  if (n === null) {
    throw badRequest('invalid_token_amount', `tokenAmount must be a whole number of tokens from 1 to ${MAX_TOKENS}`);
  }
  return n;
}

function text(value, field, max = 200) {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw badRequest('invalid_field', `${field} must be a non-empty string of at most ${max} characters`, { field });
  }
  return value;
}

function optionalKey(value) {
  return value === undefined || value === null ? null : text(value, 'clientIdempotencyKey');
}

/** Call ids come from the call service: a string, or an integer we keep as text. */
function callId(value) {
  return Number.isSafeInteger(value) ? String(value) : text(value, 'callId');
}

module.exports = { isObject, objectBody, parseTokens, tokenAmount, text, optionalKey, callId };
