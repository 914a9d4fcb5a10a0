'use strict';

// The queue between the webhook (producer) and the worker (consumer). A job is
// a wake-up call naming an inbox event: the worker reads the event from
// PostgreSQL and asks Stripe for the intent's current state.

const { Queue } = require('bullmq');
const { defect } = require('./defects');

const QUEUE_NAME = 'stripe-events';

function jobOptions() {
  const options = {
    // ~0.25 s, 0.5 s, 1 s, ... : a Stripe or database hiccup is ridden out.
    attempts: 10,
    backoff: { type: 'exponential', delay: 250 },
    // The inbox is the record; a finished job is gone, so the sweeper can
    // re-add an event id whenever its inbox row is still pending.
    removeOnComplete: true,
    // Failed jobs are kept a minute for inspection; the sweeper re-adds the
    // event (same job id) once the failed job is gone.
    removeOnFail: { age: 60 },
  };
  if (defect('no-retry-on-error')) {
    options.attempts = 1;
  }
  if (defect('enqueue-before-commit')) {
    // "Keep completed jobs an hour: BullMQ then drops a re-added job id, a free dedupe."
    options.removeOnComplete = { age: 3600 };
  }
  return options;
}

function createQueue(connection) {
  return new Queue(QUEUE_NAME, { connection, defaultJobOptions: jobOptions() });
}

/** What a job carries: the event's id (its job id), type and PaymentIntent. */
function jobData(event) {
  return { eventId: event.eventId, type: event.type, paymentIntentId: event.paymentIntentId };
}

/**
 * Enqueue one inbox event. The job id is the event id: while a job for the
 * event exists (waiting, active, delayed), adding it again is a no-op.
 */
async function enqueueEvent(queue, event, { jobId = event.eventId } = {}) {
  const opts = jobId === null ? {} : { jobId };
  return queue.add(event.type, jobData(event), opts);
}

module.exports = { QUEUE_NAME, createQueue, enqueueEvent, jobOptions };
