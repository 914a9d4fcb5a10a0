// postgres.js (porsager/postgres v3): one pool, tagged templates, sql.begin
// transactions. BIGINT (oid 20) comes back as a JS number: every amount is at
// most 10^9 and every sum we read stays far below 2^53.

import { readdirSync, readFileSync } from 'node:fs';
import postgres from 'postgres';

const RETRYABLE = new Set(['40001', '40P01']); // serialization_failure, deadlock_detected
// The connection went away (the server terminated it, a failover, a reset).
const CONNECTION_LOST = new Set([
  '57P01', '57P02', '57P03', '08000', '08003', '08006',
  'CONNECTION_CLOSED', 'CONNECTION_DESTROYED', 'CONNECTION_ENDED',
]);
const MAX_ATTEMPTS = 8;
const MIGRATION_LOCK = 72_430_517; // pg_advisory_xact_lock key for migrations

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function connect(config, log) {
  const sql = postgres(config.databaseUrl, {
    max: config.dbPoolMax,
    idle_timeout: 60,
    connect_timeout: 10,
    max_lifetime: 60 * 30,
    onnotice: () => {},
    transform: { undefined: null },
    connection: { application_name: 'fastify-credits' },
    types: {
      bigint: { to: 20, from: [20], serialize: (x) => String(x), parse: (x) => Number(x) },
    },
    debug: false,
    onclose: (id) => log.debug({ connection: id }, 'pg connection closed'),
  });
  return retryingTerminated(sql, log);
}

/**
 * A statement answered 57P01 (admin_shutdown) ran on a backend that was
 * terminated: it did not commit, so it is sent again (postgres.js hands the
 * termination notice of a killed connection to the next statement it sends on
 * it). Only tagged-template statements on the pool; helpers such as sql.json()
 * and sql.begin() pass through (transactions retry as a whole, see
 * transaction()).
 */
function retryingTerminated(sql, log) {
  return new Proxy(sql, {
    apply(target, self, args) {
      const [strings] = args;
      if (!Array.isArray(strings) || !('raw' in strings)) return Reflect.apply(target, self, args);
      return (async () => {
        for (let attempt = 1; ; attempt += 1) {
          try {
            return await Reflect.apply(target, self, args);
          } catch (err) {
            if (err.code !== '57P01' || attempt >= 3) throw err;
            log.warn({ code: err.code, attempt }, 'statement met a terminated connection, sending it again');
          }
        }
      })();
    },
  });
}

/**
 * sql.begin with retries: a deadlock or serialization failure restarts the
 * whole transaction (the callback only talks to the database, so running it
 * again is safe). So does a lost connection, but only while the callback was
 * still running: then COMMIT was never sent and nothing happened. Lost during
 * COMMIT, the outcome is unknown and the error goes to the caller (the client
 * retries with its Idempotency-Key). Anything else is thrown to the caller.
 */
export async function transaction(sql, log, fn, { retry = true } = {}) {
  for (let attempt = 1; ; attempt += 1) {
    let committing = false;
    try {
      return await sql.begin(async (tx) => {
        const result = await fn(tx);
        committing = true;
        return result;
      });
    } catch (err) {
      const again = RETRYABLE.has(err.code) || (CONNECTION_LOST.has(err.code) && !committing);
      if (!retry || !again || attempt >= MAX_ATTEMPTS) throw err;
      const wait = Math.min(200, 4 * 2 ** attempt) + Math.floor(Math.random() * 15);
      log.warn({ code: err.code, attempt, wait }, 'transaction conflict, retrying');
      await sleep(wait);
    }
  }
}

/** Apply migrations/*.sql in name order, one migrator at a time (advisory lock). */
export async function migrate(sql, log) {
  const dir = new URL('../migrations/', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    for (const file of files) {
      await tx.unsafe(readFileSync(new URL(file, dir), 'utf8')).simple();
      log.info({ file }, 'migration applied');
    }
  });
}
