'use strict';

// The web process: HTTP API and the webhook's producer side of the queue.

const { runProcess } = require('../lifeline');

runProcess('web', async () => {
  const logger = require('../logger');
  const { config } = require('../config');
  const { pool } = require('../db');
  const { connect } = require('../redis');
  const { createQueue } = require('../queue');
  const { createStripe } = require('../stripe');
  const { createApp } = require('./app');

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

  return () => new Promise((resolve) => {
    server.close(async () => {
      await Promise.allSettled([queue.close(), pool.end()]);
      redis.disconnect();
      resolve();
    });
    server.closeIdleConnections();
  });
});
