'use strict';

const crypto = require('crypto');
const express = require('express');

const { pool } = require('../db');
const { Refused, errorMiddleware } = require('../errors');
const { WORKER_HEARTBEAT_KEY } = require('../redis');
const { tokensRouter } = require('./routes/tokens');
const { webhookRouter } = require('./routes/webhook');
const logger = require('../logger');

function within(promise, ms) {
  let timer;
  return Promise.race([
    promise,
    new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Healthy = this process, its database, the broker and a live worker. */
async function healthChecks(redis) {
  const checks = { database: 'down', broker: 'down', worker: 'down' };
  await Promise.all([
    within(pool.query('SELECT 1'), 2000).then(() => { checks.database = 'ok'; }, () => {}),
    within(redis.ping(), 1000).then(() => { checks.broker = 'ok'; }, () => {}),
    within(redis.get(WORKER_HEARTBEAT_KEY), 1000).then((beat) => {
      if (beat) checks.worker = 'ok';
    }, () => {}),
  ]);
  return checks;
}

function createApp({ stripe, queue, redis }) {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    req.id = crypto.randomUUID();
    res.set('X-Request-Id', req.id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      if (req.path === '/health' && res.statusCode === 200) return;
      logger.info('request', {
        requestId: req.id,
        method: req.method,
        path: req.path,
        status: res.statusCode,
        ms: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100,
        user: req.userId,
      });
    });
    next();
  });

  app.get('/health', async (req, res) => {
    const checks = await healthChecks(redis);
    const healthy = Object.values(checks).every((c) => c === 'ok');
    res.status(healthy ? 200 : 503).json({ status: healthy ? 'ok' : 'unavailable', checks });
  });

  // The webhook reads its raw body (signature); the token routes parse JSON.
  app.use('/api/payments', webhookRouter({ stripe, queue, redis }));
  app.use('/api/tokens', express.json({ limit: '100kb' }), tokensRouter({ stripe }));

  app.use((req, res, next) => next(new Refused(404, 'not_found', 'No such route')));
  app.use(errorMiddleware);
  return app;
}

module.exports = { createApp };
