'use strict';

// Purchase rows (token_transactions of type 'purchase'), shared by the
// purchase route and the worker: whichever of them sees a PaymentIntent first
// inserts its row, the other finds it (unique stripe_payment_intent_id).

const { packageOf, usd } = require('./catalogue');
const { isObject } = require('./validation');

/**
 * What a PaymentIntent was bought for, from the metadata our purchase route
 * wrote: { userId, pack, clientKey }. Null when the intent is not one of our
 * purchases (no or bad metadata, an amount that is not the package's price).
 */
function purchaseFromIntent(intent) {
  const meta = isObject(intent.metadata) ? intent.metadata : {};
  const pack = /^[1-9][0-9]{0,9}$/.test(meta.tokenAmount || '') ? packageOf(Number(meta.tokenAmount)) : null;
  const valid = pack && typeof meta.userId === 'string' && meta.userId && intent.amount === pack.cents;
  if (!valid) return null;
  const clientKey = typeof meta.clientIdempotencyKey === 'string' ? meta.clientIdempotencyKey : null;
  return { userId: meta.userId, pack, clientKey };
}

const describe = (pack, note) => [
  `${pack.tokens} tokens`,
  pack.bonus ? ` + ${pack.bonus} bonus` : '',
  note ? ` (${note})` : '',
].join('');

/**
 * The intent's purchase row, inserted with `status` unless it exists: one
 * statement either way. The no-op update on a conflict is what makes
 * RETURNING give the existing row.
 */
async function ensurePurchaseRow(db, intentId, { userId, pack, clientKey }, status, note) {
  const { rows } = await db.query(
    `INSERT INTO token_transactions AS t
       (user_id, type, tokens, amount_usd, bonus_tokens, stripe_payment_intent_id,
        client_idempotency_key, status, description)
     VALUES ($1, 'purchase', $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (stripe_payment_intent_id)
       DO UPDATE SET stripe_payment_intent_id = t.stripe_payment_intent_id
     RETURNING id, user_id, tokens, status`,
    [userId, pack.tokens + pack.bonus, usd(pack.cents), pack.bonus, intentId, clientKey, status,
      describe(pack, note)],
  );
  return rows[0];
}

module.exports = { purchaseFromIntent, ensurePurchaseRow };
