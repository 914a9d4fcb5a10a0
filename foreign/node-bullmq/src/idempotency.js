'use strict';

// Client idempotency keys: one namespace per user for every route. A key
// remembers the request's fingerprint (route + normalised fields) and the
// first final outcome, which a retry gets again.

const crypto = require('crypto');
const { refusal } = require('./errors');

const sha256 = (text) => crypto.createHash('sha256').update(text).digest('hex');

const fingerprint = (route, fields) => sha256(JSON.stringify([route, ...fields.map((f) => f ?? null)]));

/** The Idempotency-Key sent to Stripe for a (user, client key): stable across retries. */
const stripeKeyFor = (userId, clientKey) => `tokens-purchase-${sha256(`${userId}\u0000${clientKey}`)}`;

const STORED = 'route, fingerprint, response_status, response_body';

/**
 * Remember a key (with its outcome when one is given), in the caller's
 * transaction or on its own. One statement: when the key is new it is ours
 * and this returns null; when it exists, the no-op update returns the stored
 * row, after waiting for a concurrent claim's transaction to end.
 */
async function remember(db, userId, key, route, print, outcome = null) {
  const { rows } = await db.query(
    `INSERT INTO client_request_keys AS k
       (user_id, client_key, route, fingerprint, response_status, response_body)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (user_id, client_key) DO UPDATE SET user_id = k.user_id
     RETURNING (xmax = 0) AS ours, ${STORED}`,
    [userId, key, route, print, outcome && outcome.status, outcome && outcome.body],
  );
  return rows[0].ours ? null : rows[0];
}

/** The stored row of a key, or null; a look that takes no lock. */
async function lookUp(db, userId, key) {
  const { rows } = await db.query(
    `SELECT ${STORED} FROM client_request_keys WHERE user_id = $1 AND client_key = $2`,
    [userId, key],
  );
  return rows[0] || null;
}

/** Write the outcome of a key claimed by `remember` without one. */
async function settle(db, userId, key, outcome) {
  await db.query(
    'UPDATE client_request_keys SET response_status = $3, response_body = $4 WHERE user_id = $1 AND client_key = $2',
    [userId, key, outcome.status, outcome.body],
  );
}

/** What a stored key answers: the first outcome, or 409 for another request or one in flight. */
function replay(stored, print) {
  if (stored.fingerprint !== print) {
    return refusal(409, 'idempotency_key_reused', 'This key was already used for a different request');
  }
  if (stored.response_status === null) {
    return refusal(409, 'idempotency_key_in_progress', 'A request with this key is still in progress');
  }
  return { status: stored.response_status, body: stored.response_body, replayed: true };
}

module.exports = { fingerprint, stripeKeyFor, remember, lookUp, settle, replay };
