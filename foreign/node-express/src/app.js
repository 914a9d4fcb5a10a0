'use strict';

const crypto = require('crypto');
const express = require('express');

const { pool } = require('./db');
const { HttpError, errorHandler, asyncHandler } = require('./errors');
const logger = require('./logger');
const tokens = require('./routes/tokens');
const payments = require('./routes/payments');

function createApp() {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  // Request id + one access-log line per request.
  app.use((req, res, next) => {
    req.id = req.get('x-request-id') || crypto.randomUUID();
    res.set('X-Request-Id', req.id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      logger.info('request', {
        requestId: req.id,
        method: req.method,
        path: req.path,
        status: res.statusCode,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
        user: req.user ? req.user.supabase_id : undefined,
      });
    });
    next();
  });

  app.get(
    '/health',
    asyncHandler(async (req, res) => {
      await pool.query('SELECT 1');
      res.json({ status: 'ok', uptime: process.uptime() });
    }),
  );

  // The webhook needs the raw body for its signature: mount it before JSON.
  app.use('/api/payments', payments);
  app.use('/api/tokens', express.json({ limit: '100kb' }), tokens);

  app.use((req, res, next) => next(new HttpError(404, 'not_found', 'No such route')));
  app.use(errorHandler);
  return app;
}

module.exports = { createApp };
