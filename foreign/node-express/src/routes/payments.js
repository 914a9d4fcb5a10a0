'use strict';

const express = require('express');

const { withTransaction } = require('../db');
const { stripe } = require('../stripe');
const { config, TOKEN_PRICES_CENTS, bonusFor } = require('../config');
const { HttpError, asyncHandler } = require('../errors');
const { isPlainObject } = require('../validation');
const logger = require('../logger');
const { defect } = require('../defects');

const router = express.Router();

const FINAL_FAILURE = {
  'payment_intent.payment_failed': 'failed',
  'payment_intent.canceled': 'canceled',
};

function centsToUsd(cents) {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

/**
 * What a PaymentIntent we have no row for was bought for, from its metadata.
 * Null when the metadata does not describe one of our purchases.
 */
function purchaseFromMetadata(intent) {
  const meta = isPlainObject(intent.metadata) ? intent.metadata : {};
  const tokenAmount = /^[1-9][0-9]*$/.test(meta.tokenAmount || '') ? Number(meta.tokenAmount) : null;
  const cents = TOKEN_PRICES_CENTS[tokenAmount];
  if (typeof meta.userId !== 'string' || !meta.userId || !cents) return null;
  if (intent.amount !== cents) return null; // not what the package costs
  const bonus = bonusFor(tokenAmount);
  return {
    userId: meta.userId,
    tokenAmount,
    bonus,
    cents,
    clientKey: typeof meta.clientIdempotencyKey === 'string' ? meta.clientIdempotencyKey : null,
  };
}

/** Lock the purchase row of an intent; create it from metadata if missing. */
async function lockPurchaseRow(client, intent, initialStatus) {
  const select = `SELECT id, user_id, tokens, status FROM token_transactions
                   WHERE stripe_payment_intent_id = $1 FOR UPDATE`;
  let { rows } = await client.query(select, [intent.id]);
  if (rows.length) return rows[0];

  const purchase = purchaseFromMetadata(intent);
  if (!purchase) return null;
  const user = await client.query('SELECT 1 FROM users WHERE supabase_id = $1', [purchase.userId]);
  if (user.rows.length === 0) return null;
  // The event beat the purchase request's own insert: create the row now; the
  // request's insert then finds it (ON CONFLICT DO NOTHING).
  await client.query(
    `INSERT INTO token_transactions
       (user_id, type, tokens, amount_usd, bonus_tokens, stripe_payment_intent_id,
        client_idempotency_key, status, description)
     VALUES ($1, 'purchase', $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (stripe_payment_intent_id) DO NOTHING`,
    [purchase.userId, purchase.tokenAmount + purchase.bonus, centsToUsd(purchase.cents),
      purchase.bonus, intent.id, purchase.clientKey, initialStatus,
      `Purchase of ${purchase.tokenAmount} tokens (recorded from webhook)`],
  );
  ({ rows } = await client.query(select, [intent.id]));
  return rows[0] || null;
}

async function creditBalance(client, userId, tokens) {
  if (defect('bigint-string-concat')) {
    // pg returns BIGINT as a string: '100' + 500 === '100500'.
    const { rows } = await client.query(
      'SELECT balance FROM token_balances WHERE user_id = $1 FOR UPDATE', [userId],
    );
    if (rows.length) {
      const next = rows[0].balance + tokens;
      await client.query('UPDATE token_balances SET balance = $1, updated_at = now() WHERE user_id = $2', [next, userId]);
      return;
    }
  }
  await client.query(
    `INSERT INTO token_balances (user_id, balance) VALUES ($1, $2)
     ON CONFLICT (user_id) DO UPDATE
       SET balance = token_balances.balance + EXCLUDED.balance, updated_at = now()`,
    [userId, tokens],
  );
}

async function onSucceeded(client, intent, log) {
  if (defect('early-webhook-dropped')) {
    const exists = await client.query(
      'SELECT 1 FROM token_transactions WHERE stripe_payment_intent_id = $1', [intent.id],
    );
    if (exists.rows.length === 0) {
      log.warn('succeeded for unknown intent, ignored');
      return 'ignored';
    }
  }
  const row = await lockPurchaseRow(client, intent, 'pending');
  if (!row) {
    log.warn('succeeded for an intent that is not one of our purchases');
    return 'ignored';
  }
  if (row.status === 'completed' && !defect('webhook-no-dedupe')) return 'already_credited';
  await client.query(
    `UPDATE token_transactions SET status = 'completed', updated_at = now() WHERE id = $1`,
    [row.id],
  );
  await creditBalance(client, row.user_id, Number(row.tokens));
  log.info('purchase credited', { userId: row.user_id, tokens: Number(row.tokens) });
  return 'credited';
}

async function onFinalFailure(client, intent, status) {
  const row = await lockPurchaseRow(client, intent, status);
  if (!row) return 'ignored';
  // A credited purchase stays credited whatever arrives late.
  if (row.status === 'completed') return 'already_credited';
  if (row.status !== status) {
    await client.query(
      'UPDATE token_transactions SET status = $2, updated_at = now() WHERE id = $1', [row.id, status],
    );
  }
  return status;
}

router.post(
  '/webhook',
  express.raw({ type: () => true, limit: '1mb' }),
  asyncHandler(async (req, res) => {
    const signature = req.get('stripe-signature');
    const payload = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let event;
    try {
      event = stripe.webhooks.constructEvent(payload, signature || '', config.stripeWebhookSecret);
    } catch (err) {
      logger.warn('webhook refused', { requestId: req.id, reason: err.type || err.name });
      throw new HttpError(400, 'invalid_webhook', 'Webhook signature or payload is invalid');
    }
    const intent = isPlainObject(event) && isPlainObject(event.data) ? event.data.object : null;
    if (typeof event.id !== 'string' || typeof event.type !== 'string' || !isPlainObject(intent)) {
      throw new HttpError(400, 'invalid_webhook', 'Webhook payload is not a Stripe event');
    }
    const handled = event.type === 'payment_intent.succeeded'
      || (event.type in FINAL_FAILURE
        && !(event.type === 'payment_intent.canceled' && defect('ignore-canceled')));
    if (!handled) return res.json({ received: true, handled: false });
    if (intent.object !== 'payment_intent' || typeof intent.id !== 'string') {
      throw new HttpError(400, 'invalid_webhook', 'Webhook payload is not a PaymentIntent event');
    }

    const log = {
      info: (msg, f) => logger.info(msg, { requestId: req.id, eventId: event.id, pi: intent.id, ...f }),
      warn: (msg, f) => logger.warn(msg, { requestId: req.id, eventId: event.id, pi: intent.id, ...f }),
    };
    const result = await withTransaction(async (client) => {
      if (!defect('webhook-no-dedupe')) {
        const seen = await client.query(
          `INSERT INTO stripe_webhook_events (event_id, type, object_id) VALUES ($1, $2, $3)
           ON CONFLICT (event_id) DO NOTHING`,
          [event.id, event.type, intent.id],
        );
        if (seen.rowCount === 0) return 'duplicate';
      }
      if (event.type === 'payment_intent.succeeded') return onSucceeded(client, intent, log);
      return onFinalFailure(client, intent, FINAL_FAILURE[event.type]);
    });
    log.info('webhook handled', { type: event.type, result });
    res.json({ received: true, result });
  }),
);

module.exports = router;
