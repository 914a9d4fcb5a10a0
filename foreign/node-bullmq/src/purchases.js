'use strict';

// Purchase rows (token_transactions of type 'purchase'), shared by the
// purchase route and the worker: whichever of them sees a PaymentIntent first
// inserts its row, the other finds it (unique stripe_payment_intent_id).

const { TOKEN_PRICES_CENTS, bonusFor, centsToUsd } = require('./config');
const { isObject } = require('./validation');

/**
 * What a PaymentIntent was bought for, from the metadata our purchase route
 * wrote. Null when the intent is not one of our purchases (no or bad metadata,
 * an amount that is not the package's price).
 */
function purchaseFromIntent(intent) {
  const meta = isObject(intent.metadata) ? intent.metadata : {};
  const tokenAmount = /^[1-9][0-9]{0,9}$/.test(meta.tokenAmount || '') ? Number(meta.tokenAmount) : null;
  const cents = tokenAmount === null ? undefined : TOKEN_PRICES_CENTS[tokenAmount];
  if (typeof meta.userId !== 'string' || !meta.userId || !cents) return null;
  if (intent.amount !== cents) return null;
  return {
    userId: meta.userId,
    tokenAmount,
    bonus: bonusFor(tokenAmount),
    cents,
    clientKey: typeof meta.clientIdempotencyKey === 'string' ? meta.clientIdempotencyKey : null,
  };
}

/** Insert the row of a purchase unless the intent has one; return the intent's row. */
async function ensurePurchaseRow(db, intentId, purchase, status, note) {
  const inserted = await db.query(
    `INSERT INTO token_transactions
       (user_id, type, tokens, amount_usd, bonus_tokens, stripe_payment_intent_id,
        client_idempotency_key, status, description)
     VALUES ($1, 'purchase', $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (stripe_payment_intent_id) DO NOTHING
     RETURNING id, user_id, tokens, status`,
    [purchase.userId, purchase.tokenAmount + purchase.bonus, centsToUsd(purchase.cents), purchase.bonus,
      intentId, purchase.clientKey, status,
      `${purchase.tokenAmount} tokens${purchase.bonus ? ` + ${purchase.bonus} bonus` : ''}${note ? ` (${note})` : ''}`],
  );
  if (inserted.rows.length) return { row: inserted.rows[0], created: true };
  const existing = await db.query(
    'SELECT id, user_id, tokens, status FROM token_transactions WHERE stripe_payment_intent_id = $1',
    [intentId],
  );
  return { row: existing.rows[0], created: false };
}

module.exports = { purchaseFromIntent, ensurePurchaseRow };
