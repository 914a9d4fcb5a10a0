'use strict';

// POST /api/payments/webhook: verify, record durably, enqueue, acknowledge.
// Nothing is credited here: the worker does that from the inbox row.

const express = require('express');

const { pool, withTransaction } = require('../../db');
const { config } = require('../../config');
const { Refused } = require('../../errors');
const { isObject } = require('../../validation');
const { handled, intentIdOf } = require('../../events');
const { enqueueEvent } = require('../../queue');
const { defect } = require('../../defects');
const logger = require('../../logger');

const ENQUEUE_TIMEOUT_MS = 2000;

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Record the event in the inbox (a duplicate delivery inserts nothing).
 * Returns the row's status: 'pending' or 'processed'.
 */
async function recordInInbox(db, event) {
  const inserted = await db.query(
    `INSERT INTO webhook_inbox (event_id, type, payment_intent_id, payload)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (event_id) DO NOTHING
     RETURNING status`,
    [event.eventId, event.type, event.paymentIntentId, event.payload],
  );
  if (inserted.rows.length) return inserted.rows[0].status;
  const existing = await db.query('SELECT status FROM webhook_inbox WHERE event_id = $1', [event.eventId]);
  return existing.rows.length ? existing.rows[0].status : 'pending';
}

function webhookRouter({ stripe, queue, redis }) {
  const router = express.Router();

  router.post('/webhook', express.raw({ type: () => true, limit: '1mb' }), async (req, res) => {
    const payload = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let raw;
    try {
      raw = stripe.webhooks.constructEvent(payload, req.get('stripe-signature') || '', config.stripeWebhookSecret);
    } catch (err) {
      logger.warn('webhook refused', { requestId: req.id, reason: err.type || err.name });
      throw new Refused(400, 'invalid_webhook', 'Webhook signature or payload is invalid');
    }
    if (!isObject(raw) || typeof raw.id !== 'string' || !raw.id || typeof raw.type !== 'string'
      || !isObject(raw.data) || !isObject(raw.data.object)) {
      throw new Refused(400, 'invalid_webhook', 'The payload is not a Stripe event');
    }
    if (!handled(raw.type)) return res.json({ received: true, handled: false });
    const paymentIntentId = intentIdOf(raw);
    if (!paymentIntentId) throw new Refused(400, 'invalid_webhook', 'The event names no PaymentIntent');

    const event = { eventId: raw.id, type: raw.type, paymentIntentId, payload: raw };
    const log = (msg, fields) => logger.info(msg, {
      requestId: req.id, eventId: event.eventId, type: event.type, pi: paymentIntentId, ...fields,
    });

    if (defect('early-event-dropped')) {
      // "Keep junk out of the queue": an intent we have no purchase row for is not ours.
      const known = await pool.query(
        'SELECT 1 FROM token_transactions WHERE stripe_payment_intent_id = $1', [paymentIntentId],
      );
      if (known.rows.length === 0) {
        log('webhook for an unknown intent: acknowledged, not queued');
        return res.json({ received: true, ignored: true });
      }
    }

    if (defect('ack-before-durable')) {
      // "Redis is our buffer": the job is the only record of the event.
      await enqueueEvent(queue, event);
      log('webhook queued');
      return res.json({ received: true });
    }

    if (defect('cache-dedupe-check-then-set')) {
      const seenKey = `token-api:webhook-seen:${event.eventId}`;
      if (await redis.get(seenKey)) {
        log('webhook duplicate (cache)');
        return res.json({ received: true, duplicate: true });
      }
      await recordInInbox(pool, event);
      await enqueueEvent(queue, event, { jobId: null });
      await redis.set(seenKey, '1', 'EX', 86_400);
      log('webhook queued');
      return res.json({ received: true });
    }

    if (defect('enqueue-before-commit')) {
      // Queue and inbox "together": the job is out before the row commits.
      await withTransaction(async (client) => {
        await enqueueEvent(queue, event);
        await recordInInbox(client, event);
        await client.query('UPDATE token_transactions SET updated_at = now() WHERE stripe_payment_intent_id = $1', [paymentIntentId]);
      });
      log('webhook queued');
      return res.json({ received: true });
    }

    // The acknowledgement is durable before we answer: the inbox row commits
    // first (autocommit insert), the job only wakes the worker up.
    const status = await recordInInbox(pool, event);
    if (status === 'processed') {
      log('webhook duplicate');
      return res.json({ received: true, duplicate: true });
    }
    try {
      const jobId = defect('unlocked-concurrent-credit') ? null : event.eventId;
      await withTimeout(enqueueEvent(queue, event, { jobId }), ENQUEUE_TIMEOUT_MS, 'enqueue');
    } catch (err) {
      // The row is committed: the sweeper enqueues it. Stripe need not retry.
      logger.warn('enqueue failed; the sweeper will pick the event up', {
        requestId: req.id, eventId: event.eventId, err,
      });
    }
    log('webhook accepted');
    return res.json({ received: true });
  });

  return router;
}

module.exports = { webhookRouter, recordInInbox };
