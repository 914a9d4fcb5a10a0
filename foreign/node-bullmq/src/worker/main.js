'use strict';

// The worker process: consumes the stripe-events queue (credits happen only
// here), sweeps the inbox, and publishes a heartbeat the web's /health needs.

const { runProcess } = require('../lifeline');

function workerOptions(connection, concurrency) {
  const { defect } = require('../defects');
  const options = {
    connection,
    concurrency,
    // A job holds its lock while it runs (renewed every 15 s); a job whose
    // worker died is retried after the stalled check notices.
    lockDuration: 30_000,
    stalledInterval: 30_000,
    maxStalledCount: 1,
  };
  if (defect('lock-expiry-redelivery')) {
    // "Jobs take 20 ms: half a second of lock is plenty, and renewing it is wasted Redis traffic."
    Object.assign(options, { lockDuration: 500, stalledInterval: 500, skipLockRenewal: true, maxStalledCount: 3 });
  }
  return options;
}

/** Stripe and SDK messages stay in our logs; the inbox row gets a short note. */
function shortError(err) {
  const text = err && err.message ? String(err.message) : String(err);
  return `${err && err.name ? err.name : 'Error'}: ${text}`.slice(0, 300);
}

runProcess('worker', async () => {
  const { Worker } = require('bullmq');
  const logger = require('../logger');
  const { config } = require('../config');
  const { pool, sleep } = require('../db');
  const { connect, WORKER_HEARTBEAT_KEY, WORKER_HEARTBEAT_TTL_MS } = require('../redis');
  const { QUEUE_NAME, createQueue } = require('../queue');
  const { createStripe } = require('../stripe');
  const { createProcessor } = require('./credit');
  const { sweep, startSweeper } = require('./sweeper');

  const redis = connect('worker-heartbeat');
  const queue = createQueue(connect('worker-queue'));
  const worker = new Worker(
    QUEUE_NAME,
    createProcessor({ stripe: createStripe({ timeout: 20_000 }) }),
    workerOptions(connect('worker', { blocking: true }), config.workerConcurrency),
  );
  worker.on('failed', (job, err) => {
    if (!job) return;
    const final = job.attemptsMade >= (job.opts.attempts || 1);
    logger.warn(final ? 'job failed for good' : 'job failed, will retry', {
      job: job.id, eventId: job.data.eventId, attemptsMade: job.attemptsMade, err,
    });
    pool.query(
      'UPDATE webhook_inbox SET attempts = attempts + 1, last_error = $2 WHERE event_id = $1 AND status = \'pending\'',
      [job.data.eventId, shortError(err)],
    ).catch(() => {});
  });
  worker.on('error', (err) => logger.warn('worker error', { err }));

  await worker.waitUntilReady();
  // Redis may be new (a restart): whatever the inbox still holds goes back in.
  await sweep(queue, { all: true });
  const stopSweeper = startSweeper(queue, config.sweepIntervalMs);

  let beating = true;
  const beat = async () => {
    while (beating) {
      try {
        await redis.set(WORKER_HEARTBEAT_KEY, JSON.stringify({ pid: process.pid, at: Date.now() }), 'PX', WORKER_HEARTBEAT_TTL_MS);
      } catch (err) {
        logger.warn('heartbeat failed', { err });
      }
      await sleep(1000);
    }
  };
  beat();
  logger.info('worker ready', { queue: QUEUE_NAME, concurrency: config.workerConcurrency });

  return async () => {
    beating = false;
    stopSweeper();
    // Let running jobs finish (Redis may already be going away with us).
    await Promise.race([worker.close(), sleep(4000)]).catch(() => {});
    await Promise.race([
      Promise.allSettled([redis.del(WORKER_HEARTBEAT_KEY), queue.close(), pool.end()]),
      sleep(800),
    ]);
  };
});
