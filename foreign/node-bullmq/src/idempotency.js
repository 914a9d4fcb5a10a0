'use strict';

// Client idempotency keys: one namespace per user for every route. A key
// remembers the request's fingerprint (route + normalised fields) and the
// first final outcome, which a retry gets again.

const crypto = require('crypto');

const sha256 = (text) => crypto.createHash('sha256').update(text).digest('hex');

function fingerprint(route, fields) {
  return sha256(JSON.stringify([route, ...fields.map((f) => (f === undefined ? null : f))]));
}

/** The Idempotency-Key sent to Stripe for a (user, client key): stable across retries. */
function stripeKeyFor(userId, clientKey) {
  return `tokens-purchase-${sha256(`${userId}\u0000${clientKey}`)}`;
}

async function find(db, userId, key) {
  const { rows } = await db.query(
    `SELECT route, fingerprint, response_status, response_body
       FROM client_request_keys WHERE user_id = $1 AND client_key = $2`,
    [userId, key],
  );
  return rows[0] || null;
}

/**
 * Claim a key inside the caller's transaction: a concurrent claim of the same
 * key waits on the primary key until this transaction ends. Null when the key
 * is ours now, else the row already stored.
 */
async function claim(client, userId, key, route, print) {
  const res = await client.query(
    `INSERT INTO client_request_keys (user_id, client_key, route, fingerprint)
     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, client_key) DO NOTHING`,
    [userId, key, route, print],
  );
  return res.rowCount === 1 ? null : find(client, userId, key);
}

async function saveOutcome(client, userId, key, outcome) {
  await client.query(
    `UPDATE client_request_keys SET response_status = $3, response_body = $4
      WHERE user_id = $1 AND client_key = $2`,
    [userId, key, outcome.status, outcome.body],
  );
}

/** Store a final outcome unless one is there already; then return the stored row. */
async function storeOutcome(db, userId, key, route, print, outcome) {
  const res = await db.query(
    `INSERT INTO client_request_keys (user_id, client_key, route, fingerprint, response_status, response_body)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, client_key) DO NOTHING`,
    [userId, key, route, print, outcome.status, outcome.body],
  );
  return res.rowCount === 1 ? null : find(db, userId, key);
}

/** What a stored key answers: the first outcome, or 409 for another request or one in flight. */
function replay(stored, print) {
  if (stored.fingerprint !== print) {
    return {
      status: 409,
      body: { success: false, error: { code: 'idempotency_key_reused', message: 'This key was already used for a different request' } },
    };
  }
  if (stored.response_status === null) {
    return {
      status: 409,
      body: { success: false, error: { code: 'idempotency_key_in_progress', message: 'A request with this key is still in progress' } },
    };
  }
  return { status: stored.response_status, body: stored.response_body, replayed: true };
}

module.exports = { fingerprint, stripeKeyFor, find, claim, saveOutcome, storeOutcome, replay };
