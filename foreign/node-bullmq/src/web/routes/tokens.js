'use strict';

const crypto = require('crypto');
const express = require('express');

const { pool, withTransaction } = require('../../db');
const { TOKEN_PRICES_CENTS, bonusFor, tokenValueUsd } = require('../../config');
const { requireUser } = require('../../auth');
const { ApiError, badRequest } = require('../../errors');
const { Stripe } = require('../../stripe');
const { objectBody, tokenAmount, text, optionalKey, callId } = require('../../validation');
const { ensurePurchaseRow } = require('../../purchases');
const keys = require('../../idempotency');
const logger = require('../../logger');

/** Outcomes are what we answer and what a retried key gets again. */
const ok = (fields) => ({ status: 200, body: { success: true, ...fields } });
const failure = (status, code, message, details) => ({
  status,
  body: { success: false, error: details ? { code, message, details } : { code, message } },
});

function send(req, res, outcome) {
  const body = { ...outcome.body, requestId: req.id };
  if (outcome.replayed) body.replayed = true;
  res.status(outcome.status).json(body);
}

function tokensRouter({ stripe }) {
  const router = express.Router();

  // ------------------------------------------------------------ balance
  router.get('/balance', requireUser, async (req, res) => {
    const { rows } = await pool.query(
      'SELECT balance, total_earned FROM token_balances WHERE user_id = $1',
      [req.userId],
    );
    res.json({
      balance: rows.length ? Number(rows[0].balance) : 0,
      totalEarned: rows.length ? Number(rows[0].total_earned) : 0,
    });
  });

  // ----------------------------------------------------------- purchase

  /** The purchase row's status right after Stripe answered the create call. */
  function rowStatusAtPurchase(intentStatus) {
    if (intentStatus === 'requires_action' || intentStatus === 'requires_confirmation') return 'requires_action';
    if (intentStatus === 'requires_payment_method') return 'failed';
    if (intentStatus === 'canceled') return 'canceled';
    // succeeded included: only the worker credits, from the webhook's event.
    return 'pending';
  }

  /** A Stripe SDK error as our outcome; null when the error is not Stripe's. */
  function stripeFailure(err) {
    if (!(err instanceof Stripe.errors.StripeError)) return null;
    if (err.type === 'StripeCardError') {
      return failure(402, 'card_declined', 'The card was declined', {
        declineCode: err.decline_code || err.code || 'generic_decline',
      });
    }
    if (err.type === 'StripeIdempotencyError') {
      return failure(409, 'idempotency_key_reused', 'This key was already used for a different request');
    }
    if (err.statusCode === 409 || err.type === 'StripeRateLimitError') {
      // Stripe is still working on this key (or throttling us): retry later.
      return failure(503, 'payment_provider_busy', 'The payment provider is busy, please retry');
    }
    if (err.type === 'StripeInvalidRequestError' && err.statusCode >= 400 && err.statusCode < 500) {
      return failure(400, 'payment_rejected', 'The payment details were rejected');
    }
    return failure(502, 'payment_provider_unavailable', 'The payment provider is unavailable, please retry');
  }

  router.post('/purchase', requireUser, async (req, res) => {
    const body = objectBody(req.body);
    const tokens = tokenAmount(body.tokenAmount);
    const cents = TOKEN_PRICES_CENTS[tokens];
    if (!cents) {
      throw badRequest('invalid_token_amount', 'tokenAmount is not one of the packages on sale', {
        validAmounts: Object.keys(TOKEN_PRICES_CENTS).map(Number),
      });
    }
    const paymentMethodId = text(body.paymentMethodId, 'paymentMethodId');
    const clientKey = optionalKey(body.clientIdempotencyKey);
    const { userId } = req;

    const user = await pool.query('SELECT 1 FROM users WHERE supabase_id = $1', [userId]);
    if (user.rows.length === 0) throw new ApiError(404, 'user_not_found', 'User not found');

    const print = keys.fingerprint('purchase', [tokens, paymentMethodId]);
    if (clientKey) {
      const stored = await keys.find(pool, userId, clientKey);
      if (stored) return send(req, res, keys.replay(stored, print));
    }

    const bonus = bonusFor(tokens);
    const purchase = {
      userId, tokenAmount: tokens, bonus, cents, clientKey: clientKey || crypto.randomUUID(),
    };
    // Same (user, client key), same Stripe key: a retried purchase is one charge.
    const stripeKey = clientKey
      ? keys.stripeKeyFor(userId, clientKey)
      : `tokens-purchase-${crypto.randomUUID()}`;

    // No transaction is open while Stripe works.
    let intent = null;
    let outcome;
    try {
      intent = await stripe.paymentIntents.create(
        {
          amount: cents,
          currency: 'usd',
          payment_method: paymentMethodId,
          confirm: true,
          automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
          description: `${tokens} tokens${bonus ? ` + ${bonus} bonus` : ''}`,
          metadata: {
            userId,
            tokenAmount: String(tokens),
            bonusTokens: String(bonus),
            clientIdempotencyKey: purchase.clientKey,
          },
        },
        { idempotencyKey: stripeKey },
      );
    } catch (err) {
      outcome = stripeFailure(err);
      if (!outcome) throw err;
      logger.warn('stripe refused the purchase', {
        requestId: req.id, type: err.type, statusCode: err.statusCode, code: err.code,
      });
      const declined = err.type === 'StripeCardError' && err.payment_intent && err.payment_intent.id;
      if (declined) await ensurePurchaseRow(pool, declined, purchase, 'failed');
    }

    if (intent) {
      const { row } = await ensurePurchaseRow(pool, intent.id, purchase, rowStatusAtPurchase(intent.status));
      outcome = ok({
        transaction: { id: Number(row.id), status: row.status, tokens, bonusTokens: bonus },
        paymentIntent: { id: intent.id, status: intent.status, client_secret: intent.client_secret },
      });
    }

    // Keep final outcomes only: after an outage a retry with the key must charge.
    if (clientKey && outcome.status < 500 && outcome.status !== 409) {
      const stored = await keys.storeOutcome(pool, userId, clientKey, 'purchase', print, outcome);
      if (stored) return send(req, res, keys.replay(stored, print));
    }
    return send(req, res, outcome);
  });

  // ------------------------------------------------ tips and call minutes

  /** Debit the caller, credit the creator, two ledger rows, one earning: one transaction. */
  async function moveTokens(client, fanId, t) {
    const { rows: people } = await client.query(
      'SELECT supabase_id, is_creator FROM users WHERE supabase_id = ANY($1::text[])',
      [[fanId, t.creatorId]],
    );
    if (!people.some((p) => p.supabase_id === fanId)) return failure(404, 'user_not_found', 'User not found');
    if (!people.some((p) => p.supabase_id === t.creatorId && p.is_creator)) {
      return failure(404, 'creator_not_found', 'Creator not found');
    }

    // The creator's first credit needs a row to lock; then both rows, in one order.
    await client.query(
      'INSERT INTO token_balances (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING',
      [t.creatorId],
    );
    const { rows: locked } = await client.query(
      `SELECT user_id, balance FROM token_balances
        WHERE user_id = ANY($1::text[]) ORDER BY user_id FOR UPDATE`,
      [[fanId, t.creatorId]],
    );
    const fanRow = locked.find((r) => r.user_id === fanId);
    if (!fanRow || Number(fanRow.balance) < t.amount) {
      return failure(402, 'insufficient_balance', 'Not enough tokens', { requiredTokens: t.amount });
    }

    const debit = await client.query(
      `UPDATE token_balances SET balance = balance - $1, updated_at = now()
        WHERE user_id = $2 AND balance >= $1 RETURNING balance`,
      [t.amount, fanId],
    );
    if (debit.rowCount === 0) {
      return failure(402, 'insufficient_balance', 'Not enough tokens', { requiredTokens: t.amount });
    }
    const credit = await client.query(
      `UPDATE token_balances
          SET balance = balance + $1, total_earned = total_earned + $1, updated_at = now()
        WHERE user_id = $2 RETURNING balance`,
      [t.amount, t.creatorId],
    );

    const usd = tokenValueUsd(t.amount);
    const ledger = `INSERT INTO token_transactions
        (user_id, type, tokens, amount_usd, status, related_user_id, channel, call_id, client_idempotency_key, description)
      VALUES ($1, $2, $3, $4, 'completed', $5, $6, $7, $8, $9) RETURNING id`;
    const what = t.kind === 'call' ? `call ${t.callId}` : `tip in ${t.channel}`;
    await client.query(ledger, [fanId, t.kind, -t.amount, usd, t.creatorId, t.channel, t.callId, t.key, what]);
    const creditRow = await client.query(ledger, [t.creatorId, t.kind, t.amount, usd, fanId, t.channel, t.callId, null, what]);

    await client.query(
      'UPDATE users SET total_earnings = total_earnings + $1::numeric, updated_at = now() WHERE supabase_id = $2',
      [usd, t.creatorId],
    );
    // One earning per credit row: the row's id makes the source unique.
    await client.query(
      `INSERT INTO creator_earnings (creator_id, earning_type, source_id, tokens_earned, usd_value, fan_id, description)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [t.creatorId, t.kind, `${t.kind}:${creditRow.rows[0].id}`, t.amount, usd, fanId, what],
    );

    const answer = { tokensDeducted: t.amount, senderBalance: Number(debit.rows[0].balance), creatorId: t.creatorId };
    if (t.kind === 'tip') {
      answer.recipientBalance = Number(credit.rows[0].balance);
      answer.channel = t.channel;
    } else {
      answer.callId = t.callId;
    }
    return ok(answer);
  }

  async function transfer(req, res, t) {
    const fanId = req.userId;
    if (t.creatorId === fanId) throw badRequest('self_transfer', 'You cannot send tokens to yourself');
    const outcome = await withTransaction(async (client) => {
      if (t.key) {
        const stored = await keys.claim(client, fanId, t.key, t.kind, t.print);
        if (stored) return keys.replay(stored, t.print);
      }
      const result = await moveTokens(client, fanId, t);
      if (t.key) await keys.saveOutcome(client, fanId, t.key, result);
      return result;
    });
    send(req, res, outcome);
  }

  router.post('/tip', requireUser, async (req, res) => {
    const body = objectBody(req.body);
    const creatorId = text(body.creatorId, 'creatorId');
    const amount = tokenAmount(body.tokenAmount);
    const channel = text(body.channel, 'channel');
    const key = optionalKey(body.clientIdempotencyKey);
    await transfer(req, res, {
      kind: 'tip', creatorId, amount, channel, callId: null, key,
      print: keys.fingerprint('tip', [creatorId, amount, channel]),
    });
  });

  router.post('/calls/deduct', requireUser, async (req, res) => {
    const body = objectBody(req.body);
    const call = callId(body.callId);
    const creatorId = text(body.creatorId, 'creatorId');
    const amount = tokenAmount(body.tokenAmount);
    const key = optionalKey(body.clientIdempotencyKey);
    await transfer(req, res, {
      kind: 'call', creatorId, amount, channel: null, callId: call, key,
      print: keys.fingerprint('call', [call, creatorId, amount]),
    });
  });

  return router;
}

module.exports = { tokensRouter };
