'use strict';

const crypto = require('crypto');

// Client idempotency keys are scoped per user (one namespace for all routes);
// the fingerprint covers the route and the normalised body, so a key reused
// for anything else is refused.

function fingerprint(route, fields) {
  const canonical = JSON.stringify([route, ...fields.map((f) => (f === undefined ? null : f))]);
  return crypto.createHash('sha256').update(canonical).digest('hex');
}

/** The Idempotency-Key we send to Stripe for a (user, client key) pair. */
function stripeKeyFor(userId, clientKey) {
  const digest = crypto.createHash('sha256').update(`${userId}\u0000${clientKey}`).digest('hex');
  return `purchase-${digest}`;
}

async function findKey(db, userId, key) {
  const { rows } = await db.query(
    `SELECT route, request_fingerprint, response_status, response_body
       FROM idempotency_keys WHERE user_id = $1 AND idempotency_key = $2`,
    [userId, key],
  );
  return rows[0] || null;
}

/**
 * Claim a key inside the caller's transaction. Concurrent claims of the same
 * key wait on the primary key until the first transaction ends. Returns null
 * when we own the key, else the stored row.
 */
async function claimKey(client, userId, key, route, print) {
  const claimed = await client.query(
    `INSERT INTO idempotency_keys (user_id, idempotency_key, route, request_fingerprint)
     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, idempotency_key) DO NOTHING`,
    [userId, key, route, print],
  );
  if (claimed.rowCount === 1) return null;
  return findKey(client, userId, key);
}

async function saveOutcome(db, userId, key, outcome) {
  await db.query(
    `UPDATE idempotency_keys SET response_status = $3, response_body = $4
      WHERE user_id = $1 AND idempotency_key = $2`,
    [userId, key, outcome.status, outcome.body],
  );
}

/** Store a finished outcome unless one is stored already (then return that one). */
async function storeOutcome(db, userId, key, route, print, outcome) {
  const res = await db.query(
    `INSERT INTO idempotency_keys
       (user_id, idempotency_key, route, request_fingerprint, response_status, response_body)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, idempotency_key) DO NOTHING`,
    [userId, key, route, print, outcome.status, outcome.body],
  );
  if (res.rowCount === 1) return { inserted: true, stored: null };
  return { inserted: false, stored: await findKey(db, userId, key) };
}

module.exports = { fingerprint, stripeKeyFor, findKey, claimKey, saveOutcome, storeOutcome };
