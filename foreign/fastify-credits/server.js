// fastify-credits: start-up. Check the defect switch and the settings, apply
// the migrations (under an advisory lock), then listen on 127.0.0.1:$PORT.

import pino from 'pino';
import { buildApp } from './src/app.js';
import { loadConfig } from './src/config.js';
import { connect, migrate } from './src/db.js';
import { activeDefect } from './src/defects.js';
import { makeStripe } from './src/stripe.js';

const logger = pino({
  level: process.env.LOG_LEVEL || 'info',
  base: { svc: 'fastify-credits' },
  redact: ['req.headers["x-api-token"]', 'req.headers["stripe-signature"]'],
});

let config;
let defectName;
try {
  defectName = activeDefect();
  config = loadConfig();
} catch (err) {
  // A clear refusal, on stderr, before anything starts.
  process.stderr.write(`fastify-credits: refusing to start: ${err.message}\n`);
  process.exit(1);
}
if (defectName) logger.warn({ defect: defectName }, 'DEFECT SWITCHED ON: this build is wrong on purpose');

const sql = connect(config, logger);
const stripe = makeStripe(config);
const app = buildApp({ config, sql, stripe, logger });

let closing = false;
async function shutdown(signal) {
  if (closing) return;
  closing = true;
  logger.info({ signal }, 'shutting down');
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  try {
    await app.close();
    await sql.end({ timeout: 5 });
  } catch (err) {
    logger.error({ err }, 'shutdown failed');
  }
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));

try {
  await migrate(sql, logger);
  await app.listen({ host: config.host, port: config.port });
} catch (err) {
  logger.fatal({ err }, 'start-up failed');
  await sql.end({ timeout: 1 }).catch(() => {});
  process.exit(1);
}
