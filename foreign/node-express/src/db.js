'use strict';

const fs = require('fs');
const path = require('path');
const { Pool } = require('pg');
const { config } = require('./config');
const logger = require('./logger');
const { defect } = require('./defects');

// node-postgres default pool: 10 clients, no connection timeout.
const pool = new Pool({ connectionString: config.databaseUrl });

if (!defect('no-pool-error-handler')) {
  // An idle client whose backend goes away (failover, pg_terminate_backend)
  // makes the pool emit 'error'; without a listener Node kills the process.
  pool.on('error', (err) => logger.error('pg pool: idle client error', { err }));
  // A checked-out client has no pool listener attached; give every client its
  // own, the failing query still rejects and its caller handles that.
  pool.on('connect', (client) => {
    client.on('error', (err) => logger.warn('pg client error', { err }));
  });
}

// SQLSTATEs worth retrying the whole transaction for.
const RETRYABLE = new Set(['40001', '40P01']); // serialization_failure, deadlock_detected
const MAX_ATTEMPTS = 6;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Run fn(client) inside BEGIN/COMMIT on one pooled client. Deadlocks and
 * serialization failures restart the whole transaction with jittered backoff.
 */
async function withTransaction(fn, { retry = true } = {}) {
  for (let attempt = 1; ; attempt += 1) {
    const client = await pool.connect();
    let result;
    try {
      await client.query('BEGIN');
      result = await fn(client);
      await client.query('COMMIT');
    } catch (err) {
      // A client whose connection died must not go back to the pool.
      const alive = await client.query('ROLLBACK').then(() => true, () => false);
      client.release(alive ? undefined : true);
      if (retry && RETRYABLE.has(err.code) && attempt < MAX_ATTEMPTS) {
        logger.warn('transaction retry', { code: err.code, attempt });
        await sleep(5 * 2 ** attempt + Math.floor(Math.random() * 20));
        continue;
      }
      throw err;
    }
    client.release();
    return result;
  }
}

async function migrate() {
  const dir = path.join(__dirname, '..', 'migrations');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const client = await pool.connect();
  try {
    // One migrator at a time (several instances may start together).
    await client.query('SELECT pg_advisory_lock(7243001)');
    for (const file of files) {
      await client.query(fs.readFileSync(path.join(dir, file), 'utf8'));
      logger.info('migration applied', { file });
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(7243001)').catch(() => {});
    client.release();
  }
}

module.exports = { pool, withTransaction, migrate };
