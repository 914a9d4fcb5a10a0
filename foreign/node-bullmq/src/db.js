'use strict';

const fs = require('fs');
const path = require('path');
const { Pool } = require('pg');
const { config } = require('./config');
const logger = require('./logger');

const pool = new Pool({
  connectionString: config.databaseUrl,
  max: 10,
  connectionTimeoutMillis: 10_000,
  idleTimeoutMillis: 30_000,
});

// A backend that goes away (failover, pg_terminate_backend) makes an idle
// client emit 'error'; unhandled, that would kill the process. A checked-out
// client gets its own listener: its pending query rejects, the caller handles it.
pool.on('error', (err) => logger.warn('pg: idle client lost', { err }));
pool.on('connect', (client) => {
  client.on('error', (err) => logger.warn('pg: client error', { err }));
});

// deadlock_detected, serialization_failure: the whole transaction is retried.
const RETRYABLE = new Set(['40P01', '40001']);
const MAX_TRIES = 8;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Run fn(client) between BEGIN and COMMIT on one pooled client. Deadlocks and
 * serialization failures run the whole function again after a jittered pause.
 */
async function withTransaction(fn) {
  for (let attempt = 1; ; attempt += 1) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (err) {
      const usable = await client.query('ROLLBACK').then(() => true, () => false);
      client.release(usable ? undefined : err);
      if (RETRYABLE.has(err.code) && attempt < MAX_TRIES) {
        logger.warn('transaction retried', { code: err.code, attempt });
        await sleep(Math.min(200, 4 * 2 ** attempt) + Math.floor(Math.random() * 15));
        continue;
      }
      throw err;
    }
  }
}

const MIGRATION_LOCK = 7_243_117;

/** Apply migrations/*.sql in order, one process at a time (web and worker both call this). */
async function migrate() {
  const dir = path.join(__dirname, '..', 'migrations');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
    );
    for (const file of files) {
      await client.query(fs.readFileSync(path.join(dir, file), 'utf8'));
      await client.query(
        'INSERT INTO schema_migrations (version) VALUES ($1) ON CONFLICT DO NOTHING',
        [file.replace(/\.sql$/, '')],
      );
    }
    logger.info('migrations applied', { files });
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    client.release();
  }
}

module.exports = { pool, withTransaction, migrate, sleep };
