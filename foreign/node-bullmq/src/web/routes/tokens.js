'use strict';

// The token routes. Purchases ask Stripe with no transaction open and record a
// pending row: only the worker credits, from the webhook's event. A tip or a
// call minute locks the two balance rows in one order, then moves the tokens
// in ONE SQL statement (see TRANSFER), whose conditional debit is the funds check.

const crypto = require('crypto');
const express = require('express');

const { pool, withTransaction } = require('../../db');
const { packageOf, onSale, creatorValue } = require('../../catalogue');
const { requireUser } = require('../../auth');
const { refusal, Refused, badRequest } = require('../../errors');
const { Stripe } = require('../../stripe');
const { readBody } = require('../../validation');
const { ensurePurchaseRow } = require('../../purchases');
const keys = require('../../idempotency');
const logger = require('../../logger');

const ok = (fields) => ({ status: 200, body: { success: true, ...fields } });

function answer(req, res, outcome) {
  res.status(outcome.status).json({
    ...outcome.body,
    requestId: req.id,
    ...(outcome.replayed ? { replayed: true } : {}),
  });
}

// ------------------------------------------------------------------ purchase

/** The purchase row's status right after Stripe answered the create call. */
const ROW_STATUS_AT_PURCHASE = {
  requires_action: 'requires_action',
  requires_confirmation: 'requires_action',
  requires_payment_method: 'failed',
  canceled: 'canceled',
  // anything else, succeeded included, waits for the worker
};

/** Stripe SDK error types as our outcome; a type not listed is a 502. */
const STRIPE_REFUSALS = {
  StripeCardError: (err) => refusal(402, 'card_declined', 'The card was declined', {
    declineCode: err.decline_code || err.code || 'generic_decline',
  }),
  StripeIdempotencyError: () => refusal(409, 'idempotency_key_reused', 'This key was already used for a different request'),
  // Stripe is still working on this key (or throttling us): retry later.
  StripeRateLimitError: () => refusal(503, 'payment_provider_busy', 'The payment provider is busy, please retry'),
  // A 409 is a key still in flight at Stripe: not the details' fault.
  StripeInvalidRequestError: (err) => (err.statusCode >= 400 && err.statusCode < 500 && err.statusCode !== 409
    ? refusal(400, 'payment_rejected', 'The payment details were rejected')
    : null),
};

function stripeRefusal(err) {
  const mapped = STRIPE_REFUSALS[err.type];
  const outcome = mapped && mapped(err);
  if (outcome) return outcome;
  if (err.statusCode === 409) {
    return refusal(503, 'payment_provider_busy', 'The payment provider is busy, please retry');
  }
  return refusal(502, 'payment_provider_unavailable', 'The payment provider is unavailable, please retry');
}

/** Ask Stripe for the charge; the intent, or the refusal it becomes. */
async function charge(stripe, userId, pack, paymentMethodId, metaKey, stripeKey) {
  try {
    const intent = await stripe.paymentIntents.create(
      {
        amount: pack.cents,
        currency: 'usd',
        payment_method: paymentMethodId,
        confirm: true,
        automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
        description: `${pack.tokens} tokens${pack.bonus ? ` + ${pack.bonus} bonus` : ''}`,
        metadata: {
          userId,
          tokenAmount: String(pack.tokens),
          bonusTokens: String(pack.bonus),
          clientIdempotencyKey: metaKey,
        },
      },
      { idempotencyKey: stripeKey },
    );
    return { intent };
  } catch (err) {
    if (!(err instanceof Stripe.errors.StripeError)) throw err;
    const declined = err.type === 'StripeCardError' && err.payment_intent ? err.payment_intent.id : null;
    return { refused: stripeRefusal(err), declined, err };
  }
}

async function buy(stripe, userId, form, requestId) {
  const pack = packageOf(form.tokenAmount);
  if (!pack) {
    throw badRequest('invalid_token_amount', 'tokenAmount is not one of the packages on sale', {
      validAmounts: onSale(),
    });
  }
  const known = await pool.query('SELECT 1 FROM users WHERE supabase_id = $1', [userId]);
  if (known.rowCount === 0) throw new Refused(404, 'user_not_found', 'User not found');

  const clientKey = form.clientIdempotencyKey;
  const print = keys.fingerprint('purchase', [pack.tokens, form.paymentMethodId]);
  const stored = clientKey && await keys.lookUp(pool, userId, clientKey);
  if (stored) return keys.replay(stored, print);

  // Same (user, client key), same Stripe key: a retried purchase is one charge.
  const metaKey = clientKey || crypto.randomUUID();
  const stripeKey = clientKey ? keys.stripeKeyFor(userId, clientKey) : `tokens-purchase-${crypto.randomUUID()}`;
  const purchase = { userId, pack, clientKey: metaKey };
  const { intent, refused, declined, err } = await charge(
    stripe, userId, pack, form.paymentMethodId, metaKey, stripeKey,
  );

  let outcome = refused;
  if (refused) {
    logger.warn('stripe refused the purchase', { requestId, type: err.type, statusCode: err.statusCode, code: err.code });
    if (declined) await ensurePurchaseRow(pool, declined, purchase, 'failed');
  } else {
    const row = await ensurePurchaseRow(pool, intent.id, purchase, ROW_STATUS_AT_PURCHASE[intent.status] || 'pending');
    outcome = ok({
      transaction: { id: Number(row.id), status: row.status, tokens: pack.tokens, bonusTokens: pack.bonus },
      paymentIntent: { id: intent.id, status: intent.status, client_secret: intent.client_secret },
    });
  }

  // Keep final outcomes only: after an outage a retry with the key must charge.
  const final = outcome.status < 500 && outcome.status !== 409;
  if (clientKey && final) {
    const first = await keys.remember(pool, userId, clientKey, 'purchase', print, outcome);
    if (first) return keys.replay(first, print);
  }
  return outcome;
}

// ------------------------------------------------------ tips and call minutes

// $1 fan, $2 creator, $3 tokens, $4 kind, $5 channel, $6 call id, $7 client key,
// $8 USD value, $9 description. Every part after `debit` selects FROM debit,
// so a refused debit changes nothing; `people` says why it was refused.
const TRANSFER = `
WITH people AS (
  SELECT EXISTS (SELECT 1 FROM users WHERE supabase_id = $1) AS fan,
         EXISTS (SELECT 1 FROM users WHERE supabase_id = $2 AND is_creator) AS creator
), debit AS (
  UPDATE token_balances SET balance = balance - $3, updated_at = now()
   WHERE user_id = $1 AND balance >= $3 AND (SELECT fan AND creator FROM people)
  RETURNING balance
), credit AS (
  INSERT INTO token_balances AS b (user_id, balance, total_earned)
  SELECT $2, $3, $3 FROM debit
  ON CONFLICT (user_id) DO UPDATE
     SET balance = b.balance + EXCLUDED.balance,
         total_earned = b.total_earned + EXCLUDED.total_earned,
         updated_at = now()
  RETURNING balance
), ledger AS (
  INSERT INTO token_transactions
    (user_id, type, tokens, amount_usd, status, related_user_id, channel, call_id,
     client_idempotency_key, description)
  SELECT side.owner, $4, side.tokens, $8::numeric, 'completed', side.other, $5, $6, side.client_key, $9
    FROM debit, (VALUES ($1::text, -$3::bigint, $2::text, $7::text),
                        ($2::text, $3::bigint, $1::text, NULL::text)) AS side (owner, tokens, other, client_key)
  RETURNING id, tokens
), earning AS (
  -- One earning per credit row: the row's id makes the source unique.
  INSERT INTO creator_earnings (creator_id, earning_type, source_id, tokens_earned, usd_value, fan_id, description)
  SELECT $2, $4, $4 || ':' || ledger.id, $3, $8::numeric, $1, $9 FROM ledger WHERE ledger.tokens > 0
), earned AS (
  UPDATE users SET total_earnings = total_earnings + $8::numeric, updated_at = now()
   WHERE supabase_id = $2 AND EXISTS (SELECT 1 FROM debit)
)
SELECT people.fan, people.creator,
       (SELECT balance FROM debit) AS sender_balance,
       (SELECT balance FROM credit) AS recipient_balance
  FROM people`;

async function moveTokens(client, fanId, t) {
  // Crossed transfers (A->B with B->A) would deadlock on TRANSFER's two row
  // updates: take the rows that exist in one order first. A creator's first
  // credit has no row yet, and so no lock another transfer could be holding.
  await client.query(
    'SELECT 1 FROM token_balances WHERE user_id = ANY($1::text[]) ORDER BY user_id FOR UPDATE',
    [[fanId, t.creatorId]],
  );
  const what = t.kind === 'call' ? `call ${t.callId}` : `tip in ${t.channel}`;
  const { rows: [moved] } = await client.query(TRANSFER, [
    fanId, t.creatorId, t.amount, t.kind, t.channel, t.callId, t.key, creatorValue(t.amount), what,
  ]);
  if (!moved.fan) return refusal(404, 'user_not_found', 'User not found');
  if (!moved.creator) return refusal(404, 'creator_not_found', 'Creator not found');
  if (moved.sender_balance === null) {
    return refusal(402, 'insufficient_balance', 'Not enough tokens', { requiredTokens: t.amount });
  }
  const common = { tokensDeducted: t.amount, senderBalance: Number(moved.sender_balance), creatorId: t.creatorId };
  return ok(t.kind === 'tip'
    ? { ...common, recipientBalance: Number(moved.recipient_balance), channel: t.channel }
    : { ...common, callId: t.callId });
}

async function transfer(fanId, t) {
  if (t.creatorId === fanId) throw badRequest('self_transfer', 'You cannot send tokens to yourself');
  const print = keys.fingerprint(t.kind, t.fields);
  return withTransaction(async (client) => {
    const stored = t.key && await keys.remember(client, fanId, t.key, t.kind, print);
    if (stored) return keys.replay(stored, print);
    const outcome = await moveTokens(client, fanId, t);
    if (t.key) await keys.settle(client, fanId, t.key, outcome);
    return outcome;
  });
}

// -------------------------------------------------------------------- routes

function tokensRouter({ stripe }) {
  const router = express.Router();

  router.get('/balance', requireUser, async (req, res) => {
    const { rows: [row] } = await pool.query(
      'SELECT balance, total_earned FROM token_balances WHERE user_id = $1',
      [req.userId],
    );
    res.json({ balance: row ? Number(row.balance) : 0, totalEarned: row ? Number(row.total_earned) : 0 });
  });

  router.post('/purchase', requireUser, async (req, res) => {
    const form = readBody(req.body, { tokenAmount: 'tokens', paymentMethodId: 'text', clientIdempotencyKey: 'key' });
    answer(req, res, await buy(stripe, req.userId, form, req.id));
  });

  router.post('/tip', requireUser, async (req, res) => {
    const f = readBody(req.body, { creatorId: 'text', tokenAmount: 'tokens', channel: 'text', clientIdempotencyKey: 'key' });
    answer(req, res, await transfer(req.userId, {
      kind: 'tip', creatorId: f.creatorId, amount: f.tokenAmount, channel: f.channel, callId: null,
      key: f.clientIdempotencyKey, fields: [f.creatorId, f.tokenAmount, f.channel],
    }));
  });

  router.post('/calls/deduct', requireUser, async (req, res) => {
    const f = readBody(req.body, { callId: 'callId', creatorId: 'text', tokenAmount: 'tokens', clientIdempotencyKey: 'key' });
    answer(req, res, await transfer(req.userId, {
      kind: 'call', creatorId: f.creatorId, amount: f.tokenAmount, channel: null, callId: f.callId,
      key: f.clientIdempotencyKey, fields: [f.callId, f.creatorId, f.tokenAmount],
    }));
  });

  return router;
}

module.exports = { tokensRouter };
