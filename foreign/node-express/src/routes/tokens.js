'use strict';

const crypto = require('crypto');
const express = require('express');
const Stripe = require('stripe');

const { pool, withTransaction } = require('../db');
const { stripe } = require('../stripe');
const { TOKEN_PRICES_CENTS, bonusFor } = require('../config');
const { authenticateToken } = require('../auth');
const { HttpError, badRequest, asyncHandler } = require('../errors');
const {
  requireObjectBody,
  requireTokenAmount,
  requireString,
  optionalIdempotencyKey,
  requireCallId,
} = require('../validation');
const idem = require('../idempotency');
const logger = require('../logger');
const { defect } = require('../defects');

const router = express.Router();

/** A route for a signed-in user. Express 4 does not await handlers: asyncHandler
 * passes a rejection on to errorHandler. */
const userRoute = (method, path, handler) => router[method](path, authenticateToken, asyncHandler(handler));

// ---------------------------------------------------------------- helpers

/** An outcome is what we answer and what a keyed retry gets again. */
const ok = (body) => ({ status: 200, body: { success: true, ...body } });
const fail = (status, code, message, extra = {}) => ({
  status,
  body: { success: false, error: { code, message, ...extra } },
});

function send(req, res, outcome, { replay = false } = {}) {
  const body = { ...outcome.body, requestId: req.id, timestamp: new Date().toISOString() };
  if (replay) body.idempotentReplay = true;
  res.status(outcome.status).json(body);
}

/** A stored key: same request -> its first outcome; anything else -> 409. */
function replayOf(stored, print) {
  if (stored.request_fingerprint !== print) {
    return fail(409, 'idempotency_key_reused', 'This idempotency key was already used for a different request');
  }
  if (stored.response_status === null) {
    return fail(409, 'idempotency_key_in_progress', 'A request with this idempotency key is still in progress');
  }
  return { status: stored.response_status, body: stored.response_body };
}

/** USD value of n tokens at 0.05 each, as an exact decimal string. */
function usdForTokens(n) {
  const cents = n * 5;
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

function centsToUsd(cents) {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

// ----------------------------------------------------------------- balance

userRoute('get', '/balance', async (req, res) => {
  const { rows } = await pool.query(
    'SELECT balance, total_earned FROM token_balances WHERE user_id = $1',
    [req.user.supabase_id],
  );
  const row = rows[0];
  res.json({
    balance: row ? Number(row.balance) : 0,
    totalEarned: row ? Number(row.total_earned) : 0,
    timestamp: new Date().toISOString(),
  });
});

// ---------------------------------------------------------------- purchase

function purchaseRowStatus(intentStatus) {
  switch (intentStatus) {
    case 'succeeded':
      // Credited by the payment_intent.succeeded webhook, never here.
      return defect('completed-at-purchase') ? 'completed' : 'pending';
    case 'requires_action':
    case 'requires_confirmation':
      return 'requires_action';
    case 'requires_payment_method':
      return 'failed';
    case 'canceled':
      return 'canceled';
    default:
      return 'pending'; // processing, requires_capture
  }
}

async function recordPurchase(db, userId, intent, tokenAmount, bonus, cents, key, status) {
  const inserted = await db.query(
    `INSERT INTO token_transactions
       (user_id, type, tokens, amount_usd, bonus_tokens, stripe_payment_intent_id,
        client_idempotency_key, status, description)
     VALUES ($1, 'purchase', $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (stripe_payment_intent_id) DO NOTHING
     RETURNING id, status`,
    [userId, tokenAmount + bonus, centsToUsd(cents), bonus, intent.id, key, status,
      `Purchase of ${tokenAmount} tokens${bonus ? ` + ${bonus} bonus` : ''}`],
  );
  if (inserted.rows.length) return inserted.rows[0];
  // The webhook got here first (or a concurrent copy of this request did).
  const existing = await db.query(
    'SELECT id, status FROM token_transactions WHERE stripe_payment_intent_id = $1',
    [intent.id],
  );
  return existing.rows[0];
}

/** Map a Stripe SDK error to our outcome; null when it is not Stripe's. */
function stripeFailure(err) {
  if (!(err instanceof Stripe.errors.StripeError)) return null;
  const leak = defect('leaky-errors') ? { details: err.message, stack: err.stack } : {};
  switch (err.type) {
    case 'StripeCardError':
      return fail(402, 'card_declined', 'The card was declined', {
        declineCode: err.decline_code || err.code || 'generic_decline',
      });
    case 'StripeIdempotencyError':
      return fail(409, 'idempotency_key_reused', 'This idempotency key was already used for a different request');
    case 'StripeInvalidRequestError':
      if (err.statusCode === 409) break; // key still in flight at Stripe
      return fail(400, 'payment_rejected', 'The payment details were rejected');
    default:
      break;
  }
  if (err.statusCode === 409 || err.type === 'StripeRateLimitError') {
    return fail(503, 'payment_provider_busy', 'Payment provider is busy, retry shortly', leak);
  }
  return fail(502, 'payment_provider_unavailable', 'Payment provider unavailable, retry shortly', leak);
}

userRoute('post', '/purchase', async (req, res) => {
  const body = requireObjectBody(req.body);
  const tokenAmount = requireTokenAmount(body.tokenAmount);
  const cents = TOKEN_PRICES_CENTS[tokenAmount];
  if (!cents) {
    throw badRequest('invalid_token_amount', 'tokenAmount is not a package on sale', {
      validAmounts: Object.keys(TOKEN_PRICES_CENTS).map(Number),
    });
  }
  const paymentMethodId = requireString(body.paymentMethodId, 'paymentMethodId');
  const key = optionalIdempotencyKey(body.clientIdempotencyKey);
  const userId = req.user.supabase_id;

  const user = await pool.query('SELECT id FROM users WHERE supabase_id = $1', [userId]);
  if (user.rows.length === 0) throw new HttpError(404, 'user_not_found', 'User not found');

  const print = idem.fingerprint('purchase', [tokenAmount, paymentMethodId]);
  if (key) {
    const stored = await idem.findKey(pool, userId, key);
    if (stored) return send(req, res, replayOf(stored, print), { replay: true });
  }

  const bonus = bonusFor(tokenAmount);
  const metaKey = key || crypto.randomUUID();
  const stripeKey = key && !defect('random-stripe-key')
    ? idem.stripeKeyFor(userId, key)
    : `purchase-${crypto.randomUUID()}`;

  // Optional defect: hold a transaction (and its pooled client) open while
  // Stripe works and insert through it, as the first hardening patch did.
  let heldClient = null;
  if (defect('tx-across-stripe')) {
    heldClient = await pool.connect();
    await heldClient.query('BEGIN');
    await heldClient.query('SELECT id FROM users WHERE supabase_id = $1', [userId]);
  }
  const db = heldClient || pool;

  let outcome;
  try {
    let intent;
    try {
      intent = await stripe.paymentIntents.create(
        {
          amount: cents,
          currency: 'usd',
          payment_method: paymentMethodId,
          confirm: true,
          automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
          description: `Purchase of ${tokenAmount} tokens${bonus ? ` + ${bonus} bonus` : ''}`,
          metadata: {
            userId,
            tokenAmount: String(tokenAmount),
            bonusTokens: String(bonus),
            clientIdempotencyKey: metaKey,
          },
        },
        { idempotencyKey: stripeKey },
      );
    } catch (err) {
      outcome = stripeFailure(err);
      if (!outcome) throw err;
      logger.warn('stripe create failed', { requestId: req.id, type: err.type, status: err.statusCode, code: err.code });
      const declined = err.type === 'StripeCardError' ? err.payment_intent : null;
      if (declined && declined.id) {
        await recordPurchase(db, userId, declined, tokenAmount, bonus, cents, metaKey, 'failed');
      }
    }

    if (intent) {
      const row = await recordPurchase(
        db, userId, intent, tokenAmount, bonus, cents, metaKey, purchaseRowStatus(intent.status),
      );
      outcome = ok({
        transaction: { id: Number(row.id), status: row.status, tokens: tokenAmount, bonusTokens: bonus },
        paymentIntent: { id: intent.id, status: intent.status, client_secret: intent.client_secret },
      });
    }
  } finally {
    if (heldClient) {
      await heldClient.query('COMMIT').catch(() => {});
      heldClient.release();
    }
  }

  // Remember final outcomes (not outages: a later retry must be able to charge).
  if (key && outcome.status < 500 && outcome.status !== 409) {
    const { inserted, stored } = await idem.storeOutcome(pool, userId, key, 'purchase', print, outcome);
    if (!inserted) {
      // A concurrent copy of this request finished first: answer what it answered.
      const first = replayOf(stored, print);
      return send(req, res, first, { replay: first.status !== 409 });
    }
  }
  return send(req, res, outcome);
});

// ------------------------------------------------------- tips and call minutes

async function lockBalances(client, fanId, creatorId) {
  if (defect('unordered-locks-no-retry')) {
    // Caller first, then recipient: two requests in opposite directions deadlock.
    const fan = await client.query('SELECT user_id, balance FROM token_balances WHERE user_id = $1 FOR UPDATE', [fanId]);
    await client.query('INSERT INTO token_balances (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING', [creatorId]);
    await client.query('SELECT 1 FROM token_balances WHERE user_id = $1 FOR UPDATE', [creatorId]);
    return fan.rows;
  }
  if (defect('lost-update')) {
    await client.query('INSERT INTO token_balances (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING', [creatorId]);
    const { rows } = await client.query('SELECT user_id, balance FROM token_balances WHERE user_id = $1', [fanId]);
    return rows;
  }
  if (!defect('first-credit-no-total-earned')) {
    // Make sure the recipient has a row to lock (its first credit).
    await client.query('INSERT INTO token_balances (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING', [creatorId]);
  }
  // Both rows, always in the same order: no lock-order deadlocks.
  const { rows } = await client.query(
    `SELECT user_id, balance FROM token_balances
      WHERE user_id = ANY($1::text[]) ORDER BY user_id FOR UPDATE`,
    [[fanId, creatorId]],
  );
  return rows;
}

/** Debit the caller, credit the creator, ledger pair, earning: one transaction. */
async function moveTokens(client, fanId, t) {
  const { rows: people } = await client.query(
    'SELECT supabase_id, is_creator FROM users WHERE supabase_id = ANY($1::text[])',
    [[fanId, t.creatorId]],
  );
  if (!people.some((p) => p.supabase_id === fanId)) return fail(404, 'user_not_found', 'User not found');
  if (!people.some((p) => p.supabase_id === t.creatorId && p.is_creator)) {
    return fail(404, 'creator_not_found', 'Creator not found');
  }

  const locked = await lockBalances(client, fanId, t.creatorId);
  const fanRow = locked.find((r) => r.user_id === fanId);
  const current = fanRow ? Number(fanRow.balance) : 0;
  if (current < t.amount) {
    return fail(402, 'insufficient_balance', 'Insufficient token balance', { requiredTokens: t.amount });
  }

  let senderBalance;
  if (defect('lost-update')) {
    senderBalance = current - t.amount; // computed from a read nobody locked
    await client.query('UPDATE token_balances SET balance = $1, updated_at = now() WHERE user_id = $2', [senderBalance, fanId]);
  } else {
    const debit = await client.query(
      `UPDATE token_balances SET balance = balance - $1, updated_at = now()
        WHERE user_id = $2 AND balance >= $1 RETURNING balance`,
      [t.amount, fanId],
    );
    if (debit.rowCount === 0) {
      return fail(402, 'insufficient_balance', 'Insufficient token balance', { requiredTokens: t.amount });
    }
    senderBalance = Number(debit.rows[0].balance);
  }

  const credit = defect('first-credit-no-total-earned')
    ? await client.query(
      `INSERT INTO token_balances (user_id, balance) VALUES ($1, $2)
       ON CONFLICT (user_id) DO UPDATE
         SET balance = token_balances.balance + EXCLUDED.balance,
             total_earned = token_balances.total_earned + EXCLUDED.balance,
             updated_at = now()
       RETURNING balance`,
      [t.creatorId, t.amount],
    )
    : await client.query(
      `UPDATE token_balances
          SET balance = balance + $1, total_earned = total_earned + $1, updated_at = now()
        WHERE user_id = $2 RETURNING balance`,
      [t.amount, t.creatorId],
    );
  const recipientBalance = Number(credit.rows[0].balance);

  const usd = usdForTokens(t.amount);
  const ledgerSql = `INSERT INTO token_transactions
      (user_id, type, tokens, amount_usd, status, related_user_id, channel, call_id,
       client_idempotency_key)
    VALUES ($1, $2, $3, $4, 'completed', $5, $6, $7, $8) RETURNING id`;
  await client.query(ledgerSql, [fanId, t.kind, -t.amount, usd, t.creatorId, t.channel, t.callId, t.key]);
  const creditRow = await client.query(ledgerSql, [t.creatorId, t.kind, t.amount, usd, fanId, t.channel, t.callId, null]);
  const creditId = creditRow.rows[0].id;

  await client.query(
    'UPDATE users SET total_earnings = total_earnings + $1::numeric, updated_at = now() WHERE supabase_id = $2',
    [usd, t.creatorId],
  );

  // The earning is keyed by the credit's own ledger row: unique per credit.
  const sourceId = t.sourceId || (t.kind === 'call' ? `call_${t.callId}_${creditId}` : `tip_${creditId}`);
  await client.query(
    `INSERT INTO creator_earnings
       (creator_id, earning_type, source_id, tokens_earned, usd_value, description, fan_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [t.creatorId, t.kind, sourceId, t.amount, usd,
      t.kind === 'call' ? `Call ${t.callId}` : `Tip received in ${t.channel}`, fanId],
  );

  const answer = { tokensDeducted: t.amount, senderBalance, creatorId: t.creatorId, usdValue: usd };
  if (t.kind === 'tip') Object.assign(answer, { recipientBalance, channel: t.channel });
  else answer.callId = t.callId;
  return ok(answer);
}

async function runTransfer(req, res, t) {
  const fanId = req.user.supabase_id;
  if (t.creatorId === fanId && !defect('self-tip')) {
    throw badRequest('self_transfer', 'You cannot send tokens to yourself');
  }
  const key = defect('transfer-key-ignored') ? null : t.key;
  // Defect: an earning id taken from the clock when the request arrives.
  if (defect('timestamp-source-id')) t.sourceId = `${t.kind}_${Date.now()}`;
  const result = await withTransaction(
    async (client) => {
      if (key) {
        const stored = await idem.claimKey(client, fanId, key, t.kind, t.print);
        if (stored) return { outcome: replayOf(stored, t.print), replay: true };
      }
      const outcome = await moveTokens(client, fanId, { ...t, key });
      if (key) await idem.saveOutcome(client, fanId, key, outcome);
      return { outcome, replay: false };
    },
    { retry: !defect('unordered-locks-no-retry') },
  );
  send(req, res, result.outcome, { replay: result.replay && result.outcome.status !== 409 });
}

userRoute('post', '/tip', async (req, res) => {
  const body = requireObjectBody(req.body);
  const creatorId = requireString(body.creatorId, 'creatorId');
  const amount = requireTokenAmount(body.tokenAmount, { lenient: true });
  const channel = requireString(body.channel, 'channel');
  const key = optionalIdempotencyKey(body.clientIdempotencyKey);
  await runTransfer(req, res, {
    kind: 'tip', creatorId, amount, channel, callId: null, key,
    print: idem.fingerprint('tip', [creatorId, amount, channel]),
  });
});

userRoute('post', '/calls/deduct', async (req, res) => {
  const body = requireObjectBody(req.body);
  const callId = requireCallId(body.callId);
  const creatorId = requireString(body.creatorId, 'creatorId');
  const amount = requireTokenAmount(body.tokenAmount, { lenient: true });
  const key = optionalIdempotencyKey(body.clientIdempotencyKey);
  await runTransfer(req, res, {
    kind: 'call', creatorId, amount, channel: null, callId, key,
    print: idem.fingerprint('call', [callId, creatorId, amount]),
  });
});

module.exports = router;
