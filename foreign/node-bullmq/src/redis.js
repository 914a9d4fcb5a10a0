'use strict';

const IORedis = require('ioredis');
const { config } = require('./config');
const logger = require('./logger');

/**
 * An ioredis connection to the service's Redis. BullMQ workers block on Redis
 * and need maxRetriesPerRequest: null; producers (the web process) want a
 * command to fail rather than wait for ever when Redis is gone.
 */
function connect(name, { blocking = false } = {}) {
  if (!config.redisUrl) throw new Error('REDIS_URL is not set (the launcher sets it)');
  const redis = new IORedis(config.redisUrl, {
    connectionName: `token-api-${name}`,
    maxRetriesPerRequest: blocking ? null : 3,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  let warned = false;
  redis.on('error', (err) => {
    // Reconnects are automatic; say it once per outage, not once per retry.
    if (!warned) logger.warn('redis connection error', { connection: name, err });
    warned = true;
  });
  redis.on('ready', () => {
    warned = false;
  });
  return redis;
}

// Published by the worker while it runs; the web process's /health needs it.
const WORKER_HEARTBEAT_KEY = 'token-api:worker:heartbeat';
const WORKER_HEARTBEAT_TTL_MS = 5000;

module.exports = { connect, WORKER_HEARTBEAT_KEY, WORKER_HEARTBEAT_TTL_MS };
