'use strict';

// One inbox event, processed by the worker: ask Stripe what the PaymentIntent
// is now, then in ONE transaction lock the inbox row and the purchase row,
// credit once / mark the row failed or canceled, and mark the event processed.
// Duplicates, reordered or stale events, concurrent copies and a job run again
// after its lock expired all end in the same state.

const { pool, withTransaction } = require('../db');
const { purchaseFromIntent, ensurePurchaseRow } = require('../purchases');
const { isObject } = require('../validation');
const { defect } = require('../defects');
const logger = require('../logger');

async function loadInbox(eventId) {
  const { rows } = await pool.query(
    'SELECT event_id, type, payment_intent_id, payload, status FROM webhook_inbox WHERE event_id = $1',
    [eventId],
  );
  return rows[0] || null;
}

async function markProcessed(db, eventId, result) {
  await db.query(
    `UPDATE webhook_inbox
        SET status = 'processed', result = $2, processed_at = now(), attempts = attempts + 1, last_error = NULL
      WHERE event_id = $1`,
    [eventId, result],
  );
}

/** The intent as Stripe has it now; null when Stripe does not know it. */
async function retrieveIntent(stripe, id) {
  try {
    return await stripe.paymentIntents.retrieve(id);
  } catch (err) {
    if (err && err.type === 'StripeInvalidRequestError' && err.statusCode === 404) return null;
    throw err;
  }
}

/** What the event's own payload claims (the defect builds trust it). */
function intentFromEvent(inbox) {
  const object = isObject(inbox.payload) && isObject(inbox.payload.data) && isObject(inbox.payload.data.object)
    ? inbox.payload.data.object
    : {};
  const status = {
    'payment_intent.succeeded': 'succeeded',
    'charge.succeeded': 'succeeded',
    'payment_intent.payment_failed': 'requires_payment_method',
    'payment_intent.canceled': 'canceled',
  }[inbox.type];
  return {
    id: inbox.payment_intent_id,
    status,
    amount: object.amount,
    metadata: object.metadata,
    last_payment_error: inbox.type === 'payment_intent.payment_failed' ? { code: 'from_event' } : null,
  };
}

/**
 * The intent's purchase row, locked (FOR UPDATE) unless told otherwise. When
 * the event beat the purchase route's insert, the row is created from the
 * intent's metadata; null when the intent is not one of our purchases.
 */
async function purchaseRow(client, intent, statusIfNew, { lock = true } = {}) {
  const select = `SELECT id, user_id, tokens, status FROM token_transactions
                   WHERE stripe_payment_intent_id = $1 ${lock ? 'FOR UPDATE' : ''}`;
  const found = await client.query(select, [intent.id]);
  if (found.rows.length) return found.rows[0];
  const purchase = purchaseFromIntent(intent);
  if (!purchase) return null;
  const user = await client.query('SELECT 1 FROM users WHERE supabase_id = $1', [purchase.userId]);
  if (user.rows.length === 0) return null;
  await ensurePurchaseRow(client, intent.id, purchase, statusIfNew, 'recorded by the worker');
  const again = await client.query(select, [intent.id]);
  return again.rows[0] || null;
}

/** Tokens a row credits; the defect build recomputes them from the metadata. */
async function tokensToCredit(client, intent, row) {
  if (!defect('bonus-every-package')) return Number(row.tokens);
  const meta = isObject(intent.metadata) ? intent.metadata : {};
  const bought = Number(meta.tokenAmount);
  if (!Number.isSafeInteger(bought) || bought <= 0) return Number(row.tokens);
  // "5% bonus tokens" (the 5000-token threshold was lost on the way to the worker).
  const bonus = Math.floor((bought * 5) / 100);
  await client.query(
    'UPDATE token_transactions SET tokens = $2, bonus_tokens = $3 WHERE id = $1',
    [row.id, bought + bonus, bonus],
  );
  return bought + bonus;
}

async function creditOnce(client, intent, guard) {
  const row = await purchaseRow(client, intent, 'pending', { lock: guard.rowLock });
  if (!row) return 'not_ours';
  if (guard.rowStatus && row.status === 'completed') return 'already_credited';
  const tokens = await tokensToCredit(client, intent, row);
  await client.query(
    `UPDATE token_transactions SET status = 'completed', credited_at = now(), updated_at = now() WHERE id = $1`,
    [row.id],
  );
  // Purchases move the balance only; total_earned counts tokens received from fans.
  await client.query(
    `INSERT INTO token_balances (user_id, balance) VALUES ($1, $2)
     ON CONFLICT (user_id) DO UPDATE SET balance = token_balances.balance + EXCLUDED.balance, updated_at = now()`,
    [row.user_id, tokens],
  );
  return 'credited';
}

async function markEnded(client, intent, final) {
  const row = await purchaseRow(client, intent, final);
  if (!row) return 'not_ours';
  // A credited purchase stays credited, whatever arrives late.
  if (row.status === 'completed' && !defect('failed-after-succeeded')) return 'already_credited';
  if (row.status !== final) {
    await client.query('UPDATE token_transactions SET status = $2, updated_at = now() WHERE id = $1', [row.id, final]);
  }
  return final;
}

/** Act on the intent's current status (not on what the event says). */
async function applyIntent(client, intent, eventType, guard) {
  switch (intent.status) {
    case 'succeeded':
      return creditOnce(client, intent, guard);
    case 'canceled':
      return markEnded(client, intent, 'canceled');
    case 'requires_payment_method':
      // Back to square one after a failed attempt: the purchase failed.
      if (eventType === 'payment_intent.payment_failed' || intent.last_payment_error) {
        return markEnded(client, intent, 'failed');
      }
      return 'not_final';
    default:
      return 'not_final'; // requires_action, processing, ...: a later event settles it
  }
}

/** The receipt step of the retry-recredits build (see defects.json). */
async function sendReceipt(job, eventId) {
  // No mail service exists in this stack: the defect build stands in a mailer
  // whose first call for a job times out, as a cold SMTP connection does.
  if (job.attemptsMade === 0) throw new Error(`receipt mailer timed out (event ${eventId})`);
}

function createProcessor({ stripe }) {
  // Which checks the credit relies on; the correct build keeps them all.
  const checkThenAct = defect('unlocked-concurrent-credit') || defect('lock-expiry-redelivery');
  const guard = {
    inboxLock: !checkThenAct && !defect('cache-dedupe-check-then-set'),
    rowLock: !checkThenAct,
    rowStatus: !checkThenAct && !defect('cache-dedupe-check-then-set')
      && !defect('retry-recredits') && !defect('trust-event-type'),
  };

  return async function processEvent(job) {
    const { eventId } = job.data;
    const log = (msg, fields) => logger.info(msg, { eventId, job: job.id, attempt: job.attemptsMade + 1, ...fields });

    let inbox = await loadInbox(eventId);
    if (!inbox) {
      if (defect('ack-before-durable')) {
        // No inbox in this build: the job is the event.
        inbox = {
          event_id: eventId, type: job.data.type, payment_intent_id: job.data.paymentIntentId,
          payload: null, status: 'pending', virtual: true,
        };
      } else if (defect('enqueue-before-commit')) {
        log('job names no inbox event: stale, dropped');
        return 'dropped';
      } else {
        // Jobs are only enqueued after the row committed: wait and retry.
        throw new Error(`event ${eventId} is not in the inbox`);
      }
    }
    if (inbox.status === 'processed' && defect('cache-dedupe-check-then-set') === false) return 'duplicate';

    const type = inbox.type;
    const intentId = inbox.payment_intent_id;

    if (checkThenAct) {
      // "Skip the Stripe call when the purchase is already credited."
      const { rows } = await pool.query(
        'SELECT status FROM token_transactions WHERE stripe_payment_intent_id = $1', [intentId],
      );
      if (rows.length && rows[0].status === 'completed') {
        await markProcessed(pool, eventId, 'already_credited');
        return 'already_credited';
      }
    }

    // Stripe first, outside any transaction: its answer is the truth we act on.
    const trustEvent = defect('trust-event-type')
      || (defect('failed-after-succeeded') && type !== 'payment_intent.succeeded');
    const intent = trustEvent ? intentFromEvent(inbox) : await retrieveIntent(stripe, intentId);

    const result = await withTransaction(async (client) => {
      if (!inbox.virtual && guard.inboxLock) {
        const locked = await client.query(
          'SELECT status FROM webhook_inbox WHERE event_id = $1 FOR UPDATE', [eventId],
        );
        if (locked.rows.length && locked.rows[0].status === 'processed') return 'duplicate';
      }
      const outcome = intent ? await applyIntent(client, intent, type, guard) : 'unknown_intent';
      if (!inbox.virtual && !defect('retry-recredits')) await markProcessed(client, eventId, outcome);
      return outcome;
    });

    if (defect('retry-recredits') && !inbox.virtual) {
      // Receipt first, then "done": a failed receipt retries the whole job.
      if (result === 'credited') await sendReceipt(job, eventId);
      await markProcessed(pool, eventId, result);
    }
    log('event processed', { type, pi: intentId, result, status: intent ? intent.status : null });
    return result;
  };
}

module.exports = { createProcessor };
