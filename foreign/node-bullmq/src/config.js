'use strict';

// Configuration from the environment, read once per process. The launcher,
// the web process and the worker all load this module, so a missing variable
// stops the launcher before it starts anything.

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`missing required environment variable ${name}`);
  return value;
}

function intFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number.parseInt(raw, 10);
  if (!Number.isSafeInteger(n) || String(n) !== raw.trim()) {
    throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  }
  return n;
}

const config = {
  port: intFromEnv('PORT', 3000),
  host: process.env.HOST || '127.0.0.1',
  databaseUrl: required('DATABASE_URL'),
  jwtSecret: required('JWT_SECRET'),
  stripeSecretKey: required('STRIPE_SECRET_KEY'),
  stripeApiBase: process.env.STRIPE_API_BASE || 'https://api.stripe.com',
  stripeWebhookSecret: required('STRIPE_WEBHOOK_SECRET'),
  // Set by the launcher (its own redis-server) unless given from outside.
  redisUrl: process.env.REDIS_URL || '',
  workerConcurrency: intFromEnv('WORKER_CONCURRENCY', 8),
  sweepIntervalMs: intFromEnv('SWEEP_INTERVAL_MS', 1000),
};

// Price table: tokens -> USD cents. Money is integers, never floats.
const TOKEN_PRICES_CENTS = Object.freeze({
  100: 99,
  500: 499,
  1000: 999,
  5000: 4999,
  10000: 9999,
});

const BONUS_FROM_TOKENS = 5000;
const BONUS_PERCENT = 5;

/** 5% bonus tokens (floored) on packages of 5000 tokens or more. */
function bonusFor(tokens) {
  return tokens >= BONUS_FROM_TOKENS ? Math.floor((tokens * BONUS_PERCENT) / 100) : 0;
}

/** Integer cents as an exact decimal string for NUMERIC columns. */
function centsToUsd(cents) {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

// A creator earns 0.05 USD per token received: n tokens are 5n cents.
function tokenValueUsd(tokens) {
  return centsToUsd(tokens * 5);
}

module.exports = { config, TOKEN_PRICES_CENTS, bonusFor, centsToUsd, tokenValueUsd };
