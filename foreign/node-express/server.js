'use strict';

const { config } = require('./src/config');
const { ACTIVE } = require('./src/defects');
const { pool, migrate } = require('./src/db');
const { createApp } = require('./src/app');
const logger = require('./src/logger');

process.on('unhandledRejection', (reason) => {
  logger.error('unhandled rejection', { err: reason instanceof Error ? reason : new Error(String(reason)) });
});

async function main() {
  if (ACTIVE) logger.warn('DEFECT SWITCHED ON', { defect: ACTIVE });
  await migrate();
  const app = createApp();
  const server = app.listen(config.port, config.host, () => {
    logger.info('listening', { host: config.host, port: config.port });
  });
  server.keepAliveTimeout = 5_000;

  const shutdown = (signal) => {
    logger.info('shutting down', { signal });
    server.close(() => pool.end().finally(() => process.exit(0)));
    setTimeout(() => process.exit(0), 5_000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err) => {
  logger.error('startup failed', { err });
  process.exit(1);
});
