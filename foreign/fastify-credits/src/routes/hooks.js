// POST /hooks/stripe: Stripe's events, verified on the raw body.
//
// payment_intent.succeeded posts the checkout exactly once per PaymentIntent:
// the journal row is locked FOR UPDATE and posted only if it is not posted
// yet, whatever the number, order or parallelism of deliveries. When the event
// beats the checkout's own insert, the row is created from the intent's
// metadata first. payment_failed / canceled close the row, never a posted one.

import { PACKAGES, bonusFor } from '../config.js';
import { transaction } from '../db.js';
import { defect } from '../defects.js';
import { ApiError } from '../errors.js';
import {
  accountExists, closeCheckout, lockCheckout, postCheckout, recordCheckout,
} from '../ledger.js';

const CLOSING = {
  'payment_intent.payment_failed': 'failed',
  'payment_intent.canceled': 'canceled',
};

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const invalid = (message) => new ApiError(400, 'invalid_event', message);

/** The checkout an intent's metadata describes, or null if it is not one of ours. */
function checkoutFromMetadata(intent) {
  const meta = isObject(intent.metadata) ? intent.metadata : {};
  const credits = /^[1-9][0-9]{0,9}$/.test(meta.credits || '') ? Number(meta.credits) : null;
  const amountCents = PACKAGES.get(credits);
  if (typeof meta.account_id !== 'string' || !meta.account_id || !amountCents) return null;
  if (intent.amount !== amountCents || intent.currency !== 'usd') return null;
  return {
    accountId: meta.account_id,
    credits,
    bonus: bonusFor(credits), // what the package earns, not what the metadata claims
    amountCents,
    idempotencyKey: typeof meta.idempotency_key === 'string' && meta.idempotency_key ? meta.idempotency_key : null,
  };
}

export default async function hookRoutes(app) {
  const { sql, stripe, config } = app;

  // Keep the body as bytes: the signature is over the exact payload.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (request, body, done) => done(null, body));

  /** Lock the intent's checkout row, creating it from metadata if it is missing. */
  async function lockOrCreate(tx, intent, status) {
    let row = await lockCheckout(tx, intent.id);
    if (row) return row;
    const c = checkoutFromMetadata(intent);
    if (!c || !(await accountExists(tx, c.accountId))) return null;
    await recordCheckout(tx, { ...c, status, paymentIntent: intent.id });
    row = await lockCheckout(tx, intent.id);
    return row;
  }

  async function onSucceeded(tx, intent) {
    if (defect('early-webhook-dropped') && !(await lockCheckout(tx, intent.id))) return 'ignored_unknown';
    const row = await lockOrCreate(tx, intent, 'pending');
    if (!row) return 'not_ours';
    if (row.status === 'posted' && !defect('webhook-not-idempotent')) return 'already_posted';
    await postCheckout(tx, row);
    return 'posted';
  }

  async function onClosed(tx, intent, status) {
    const row = await lockOrCreate(tx, intent, status);
    if (!row) return 'not_ours';
    return closeCheckout(tx, row, status);
  }

  app.post('/stripe', async (request, reply) => {
    const payload = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    let event;
    if (defect('unsigned-webhook')) {
      try {
        event = JSON.parse(payload.toString('utf8'));
      } catch {
        throw invalid('The body is not JSON');
      }
    } else {
      const signature = request.headers['stripe-signature'];
      try {
        event = stripe.webhooks.constructEvent(payload, typeof signature === 'string' ? signature : '', config.stripeWebhookSecret);
      } catch (err) {
        request.log.warn({ reason: err.type || err.name }, 'webhook refused');
        throw invalid('The signature or the payload is not valid');
      }
    }
    if (!isObject(event) || typeof event.id !== 'string' || typeof event.type !== 'string'
        || !isObject(event.data) || !isObject(event.data.object)) {
      throw invalid('The payload is not a Stripe event');
    }
    const handled = event.type === 'payment_intent.succeeded' || Object.hasOwn(CLOSING, event.type);
    if (!handled) return reply.code(204).send();
    const intent = event.data.object;
    if (intent.object !== 'payment_intent' || typeof intent.id !== 'string') {
      throw invalid('The event does not carry a PaymentIntent');
    }

    const outcome = await transaction(sql, request.log, async (tx) => {
      const result = event.type === 'payment_intent.succeeded'
        ? await onSucceeded(tx, intent)
        : await onClosed(tx, intent, CLOSING[event.type]);
      await tx`
        insert into stripe_events (event_id, type, object_id, outcome)
        values (${event.id}, ${event.type}, ${intent.id}, ${result})
        on conflict (event_id) do nothing`;
      return result;
    });
    request.log.info({ eventId: event.id, type: event.type, paymentIntent: intent.id, outcome }, 'webhook handled');
    return reply.code(204).send();
  });
}
