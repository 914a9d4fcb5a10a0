'use strict';

// Re-enqueue every inbox event not processed yet. At worker start all of them
// (a fresh Redis after a crash knows none); then every second those pending
// for more than a second (their enqueue failed, or their job was lost). The
// job id is the event id: an event whose job still exists is not added twice.

const { pool } = require('../db');
const { enqueueEvent } = require('../queue');
const logger = require('../logger');

const BATCH = 500;

async function sweep(queue, { all = false } = {}) {
  const { rows } = await pool.query(
    `SELECT event_id, type, payment_intent_id FROM webhook_inbox
      WHERE status = 'pending' ${all ? '' : "AND received_at < now() - interval '1 second'"}
      ORDER BY received_at LIMIT ${BATCH}`,
  );
  for (const row of rows) {
    await enqueueEvent(queue, { eventId: row.event_id, type: row.type, paymentIntentId: row.payment_intent_id });
  }
  if (rows.length && all) logger.info('sweeper re-enqueued pending events', { count: rows.length });
  return rows.length;
}

/** Sweep every intervalMs until stop() is called. */
function startSweeper(queue, intervalMs) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    try {
      await sweep(queue);
    } catch (err) {
      logger.warn('sweep failed', { err });
    }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  };
  timer = setTimeout(tick, intervalMs);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

module.exports = { sweep, startSweeper };
