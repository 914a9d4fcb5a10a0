'use strict';

// The web process: HTTP API and the webhook's producer side of the queue.

const logger = require('../logger');

logger.setRole('web');

const { config } = require('../config');
const { ACTIVE } = require('../defects');
const { pool, migrate } = require('../db');
const { connect } = require('../redis');
const { createQueue } = require('../queue');
const { createStripe } = require('../stripe');
const { exitWithLauncher } = require('../lifeline');
const { createApp } = require('./app');

process.on('unhandledRejection', (reason) => {
  logger.error('unhandled rejection', { err: reason instanceof Error ? reason : new Error(String(reason)) });
});

async function main() {
  exitWithLauncher();
  if (ACTIVE.length) logger.warn('DEFECTS SWITCHED ON', { defects: ACTIVE });
  await migrate();
  const redis = connect('web');
  const queue = createQueue(connect('web-queue'));
  const app = createApp({ stripe: createStripe(), queue, redis });
  const server = app.listen(config.port, config.host, () => {
    logger.info('listening', { host: config.host, port: config.port });
  });
  server.on('error', (err) => {
    logger.error('cannot listen', { err });
    process.exit(1);
  });
  server.keepAliveTimeout = 5000;

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    setTimeout(() => process.exit(0), 5000).unref();
    server.close(async () => {
      await Promise.allSettled([queue.close(), pool.end()]);
      redis.disconnect();
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  logger.error('web failed to start', { err });
  process.exit(1);
});
