// Client Idempotency-Key handling, per account (one namespace for every route).
// A key is claimed by inserting its row before any money moves; the first
// answer is stored on it and every later request with that key gets that
// answer back, or 409 when its body differs from the first one's.

import { createHash } from 'node:crypto';
import { sleep } from './db.js';
import { errorBody } from './errors.js';

const WAIT_FOR_FIRST_MS = 20_000; // a copy that finds the key in flight waits this long
const STALE_CLAIM = '2 minutes'; // a claim never finished (process died) may be taken over

export function requestHash(route, fields) {
  return createHash('sha256').update(JSON.stringify([route, ...fields])).digest('hex');
}

/** The Idempotency-Key we send Stripe for a client's (account, key). */
export function stripeKeyFor(accountId, clientKey) {
  const digest = createHash('sha256').update(`${accountId}\u0000${clientKey}`).digest('hex');
  return `checkout-${digest}`;
}

const reused = () => ({
  status: 409,
  body: errorBody('idempotency_key_reused', 'This Idempotency-Key was already used with a different request'),
});

const inFlight = () => ({
  status: 409,
  body: errorBody('idempotency_key_in_flight', 'A request with this Idempotency-Key is still being processed; retry shortly'),
});

/** What a stored key row means for a request with `hash`: a replay, 409, or null (in flight). */
function fromStored(row, hash) {
  if (row.request_hash !== hash) return { outcome: reused(), replay: false };
  if (row.status_code === null) return null;
  return { outcome: { status: row.status_code, body: row.response }, replay: true };
}

/**
 * Inside a transfer's transaction: claim the key (a concurrent claim of the
 * same key blocks on the primary key until the first transaction ends, then
 * finds its stored answer). Returns null when this request owns the key.
 */
export async function claimInTransaction(tx, accountId, key, route, hash) {
  const [claimed] = await tx`
    insert into idempotency_keys (account_id, key, route, request_hash)
    values (${accountId}, ${key}, ${route}, ${hash})
    on conflict (account_id, key) do nothing
    returning key`;
  if (claimed) return null;
  const [row] = await tx`
    select request_hash, status_code, response from idempotency_keys
    where account_id = ${accountId} and key = ${key}`;
  return fromStored(row, hash) || { outcome: inFlight(), replay: false };
}

/**
 * Outside any transaction (checkout, which calls Stripe): claim the key in
 * its own statement. A copy that finds the key in flight polls until the first
 * request stores its answer (then replays it), gives its claim back (then
 * claims it itself) or WAIT_FOR_FIRST_MS pass (409).
 */
export async function claimOrWait(sql, accountId, key, route, hash) {
  const deadline = Date.now() + WAIT_FOR_FIRST_MS;
  for (let delay = 25; ; delay = Math.min(delay * 2, 400)) {
    const [claimed] = await sql`
      insert into idempotency_keys (account_id, key, route, request_hash)
      values (${accountId}, ${key}, ${route}, ${hash})
      on conflict (account_id, key) do update
        set route = excluded.route, request_hash = excluded.request_hash, created_at = now()
        where idempotency_keys.status_code is null
          and idempotency_keys.created_at < now() - ${STALE_CLAIM}::interval
      returning key`;
    if (claimed) return null;
    const [row] = await sql`
      select request_hash, status_code, response from idempotency_keys
      where account_id = ${accountId} and key = ${key}`;
    if (row) {
      const stored = fromStored(row, hash);
      if (stored) return stored;
      if (Date.now() >= deadline) return { outcome: inFlight(), replay: false };
      await sleep(delay);
    }
  }
}

/** Look a key up without claiming it (the checkout-key-late-claim defect). */
export async function findStored(sql, accountId, key, hash) {
  const [row] = await sql`
    select request_hash, status_code, response from idempotency_keys
    where account_id = ${accountId} and key = ${key}`;
  return row ? fromStored(row, hash) : null;
}

export async function storeAnswer(db, accountId, key, outcome) {
  await db`
    update idempotency_keys
       set status_code = ${outcome.status}, response = ${db.json(outcome.body)}, completed_at = now()
     where account_id = ${accountId} and key = ${key}`;
}

/** Insert a finished answer unless one is there (the late-claim defect's way). */
export async function insertAnswer(sql, accountId, key, route, hash, outcome) {
  await sql`
    insert into idempotency_keys (account_id, key, route, request_hash, status_code, response, completed_at)
    values (${accountId}, ${key}, ${route}, ${hash}, ${outcome.status}, ${sql.json(outcome.body)}, now())
    on conflict (account_id, key) do nothing`;
}

/** Give a claim back (an outage: a later retry must be able to charge). */
export async function releaseClaim(sql, accountId, key) {
  await sql`
    delete from idempotency_keys
    where account_id = ${accountId} and key = ${key} and status_code is null`;
}
