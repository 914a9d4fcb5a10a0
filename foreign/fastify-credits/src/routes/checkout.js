// POST /v1/credits/checkout: buy a credit package with a card.
//
// The PaymentIntent is created with confirm: true; the journal row is written
// pending and the credits are posted only by the payment_intent.succeeded
// webhook. No transaction and no pooled connection is held while Stripe works.

import { randomUUID } from 'node:crypto';

import { PACKAGES, bonusFor } from '../config.js';
import { transaction } from '../db.js';
import { defect } from '../defects.js';
import { badRequest, notFound, errorBody, debugDetails } from '../errors.js';
import {
  claimOrWait, findStored, insertAnswer, releaseClaim, requestHash, stripeKeyFor, storeAnswer,
} from '../idempotency.js';
import { accountExists, lockCheckout, postCheckout, recordCheckout } from '../ledger.js';
import { StripeErrors } from '../stripe.js';
import { idempotencyKeyOf, parseCredits, requireObject, requireText } from '../validation.js';
import { sendOutcome } from './reply.js';

const PACKAGE_LIST = [...PACKAGES.keys()].join(', ');

/** The journal status of a checkout whose intent Stripe answered with `status`. */
function journalStatusFor(intentStatus) {
  if (intentStatus === 'requires_payment_method') return 'failed';
  if (intentStatus === 'canceled') return 'canceled';
  return 'pending'; // succeeded, requires_action, processing, ...: the webhook decides
}

export default async function checkoutRoutes(app) {
  const { sql, stripe } = app;

  /** A Stripe error as our answer; throws what is not Stripe's. */
  async function stripeFailure(request, err, c, db) {
    if (!(err instanceof StripeErrors.StripeError)) throw err;
    request.log.warn(
      { type: err.type, status: err.statusCode, code: err.code, requestId: err.requestId, stripeMessage: err.message },
      'stripe refused the payment intent',
    );
    if (err instanceof StripeErrors.StripeCardError) {
      const intent = err.payment_intent;
      if (intent && typeof intent.id === 'string') {
        await recordCheckout(db, { ...c, status: 'failed', paymentIntent: intent.id });
      }
      return {
        status: 402,
        body: {
          ...errorBody('card_declined', 'The card was declined'),
          payment_intent: intent && typeof intent.id === 'string' ? intent.id : null,
          decline_code: err.decline_code || err.code || 'generic_decline',
        },
      };
    }
    if (err instanceof StripeErrors.StripeIdempotencyError) {
      return { status: 409, body: errorBody('idempotency_key_reused', 'This Idempotency-Key was already used with a different request') };
    }
    if (err instanceof StripeErrors.StripeInvalidRequestError && err.statusCode >= 400 && err.statusCode < 500 && err.statusCode !== 409) {
      return { status: 400, body: errorBody('payment_rejected', 'The payment details were rejected') };
    }
    // Connection errors, 5xx after the SDK's retries, 409 in flight, rate limits, auth.
    return {
      status: 503,
      body: errorBody('payment_provider_unavailable', 'The payment provider is unavailable; retry with the same Idempotency-Key', debugDetails(err)),
    };
  }

  /** Create the intent and record it through `db`; returns {status, body}. */
  async function chargeWith(db, request, c, stripeKey) {
    const metadata = {
      account_id: c.accountId,
      credits: String(c.credits),
      bonus_credits: String(c.bonus),
    };
    if (c.idempotencyKey) metadata.idempotency_key = c.idempotencyKey;
    let intent;
    try {
      intent = await stripe.paymentIntents.create(
        {
          amount: c.amountCents,
          currency: 'usd',
          confirm: true,
          payment_method: c.paymentMethod,
          payment_method_types: ['card'], // card only: confirm needs no return_url
          description: `${c.credits} credits${c.bonus ? ` + ${c.bonus} bonus` : ''}`,
          metadata,
        },
        stripeKey ? { idempotencyKey: stripeKey } : undefined,
      );
    } catch (err) {
      return stripeFailure(request, err, c, db);
    }
    const row = await recordCheckout(db, { ...c, status: journalStatusFor(intent.status), paymentIntent: intent.id });

    if (defect('credit-at-checkout') && ['succeeded', 'processing', 'requires_action'].includes(intent.status)) {
      // Optimistic: the card "went through", post the credits now.
      await transaction(sql, request.log, async (tx) => {
        const locked = await lockCheckout(tx, intent.id);
        if (locked && locked.status !== 'posted') await postCheckout(tx, locked);
      });
    }

    request.log.info({ paymentIntent: intent.id, intentStatus: intent.status, journalId: row.id }, 'checkout recorded');
    return {
      status: 201,
      body: {
        checkout: {
          id: row.id,
          payment_intent: intent.id,
          status: intent.status,
          client_secret: intent.client_secret,
        },
      },
    };
  }

  function charge(request, c, stripeKey) {
    if (defect('tx-across-stripe')) {
      // One transaction around the whole checkout: it holds a pooled
      // connection (and an open transaction) for as long as Stripe takes.
      return sql.begin(async (tx) => {
        await tx`select id from accounts where id = ${c.accountId}`;
        return chargeWith(tx, request, c, stripeKey);
      });
    }
    return chargeWith(sql, request, c, stripeKey);
  }

  app.post('/credits/checkout', async (request, reply) => {
    const body = requireObject(request.body);
    const credits = parseCredits(body.credits, 'credits');
    const amountCents = PACKAGES.get(credits);
    if (!amountCents) throw badRequest('unknown_package', `credits must be one of ${PACKAGE_LIST}`);
    const paymentMethod = requireText(body.payment_method, 'payment_method');
    const key = idempotencyKeyOf(request);
    const { accountId } = request;

    // Look the buyer up before anything is charged.
    if (!(await accountExists(sql, accountId))) throw notFound('account_not_found', 'Your account does not exist');

    const c = { accountId, credits, bonus: bonusFor(credits), amountCents, paymentMethod, idempotencyKey: key };
    if (!key) return sendOutcome(reply, await charge(request, c, null));

    const hash = requestHash('checkout', [credits, paymentMethod]);

    if (defect('checkout-key-late-claim')) {
      // Check, charge, then remember: two copies that arrive together both
      // find nothing stored and both charge (each with its own Stripe key).
      const stored = await findStored(sql, accountId, key, hash);
      if (stored) return sendOutcome(reply, stored.outcome, stored.replay);
      const outcome = await charge(request, c, `checkout-${randomUUID()}`);
      if (outcome.status < 500) await insertAnswer(sql, accountId, key, 'checkout', hash, outcome);
      return sendOutcome(reply, outcome);
    }

    // Claim the key before Stripe is called: concurrent copies wait for the
    // first one's answer, and Stripe gets a key derived from (account, key),
    // so even a copy that charges after a give-back finds the same intent.
    const claim = await claimOrWait(sql, accountId, key, 'checkout', hash);
    if (claim) return sendOutcome(reply, claim.outcome, claim.replay);
    let outcome;
    try {
      outcome = await charge(request, c, stripeKeyFor(accountId, key));
    } catch (err) {
      await releaseClaim(sql, accountId, key).catch((e) => request.log.error({ err: e }, 'could not release key'));
      throw err;
    }
    if (outcome.status >= 500) {
      // An outage is not the key's answer: a retry must be able to go through.
      await releaseClaim(sql, accountId, key);
    } else {
      await storeAnswer(sql, accountId, key, outcome);
    }
    return sendOutcome(reply, outcome);
  });
}
