'use strict';

// Configuration from the environment, read once per process. The launcher,
// the web process and the worker all load this module, so a missing or
// malformed variable stops the launcher before it starts anything.
//
// Each setting is one row: variable, kind, default (undefined: required).

const SETTINGS = [
  ['port', 'PORT', 'int', 3000],
  ['host', 'HOST', 'text', '127.0.0.1'],
  ['databaseUrl', 'DATABASE_URL', 'text'],
  ['jwtSecret', 'JWT_SECRET', 'text'],
  ['stripeSecretKey', 'STRIPE_SECRET_KEY', 'text'],
  ['stripeApiBase', 'STRIPE_API_BASE', 'text', 'https://api.stripe.com'],
  ['stripeWebhookSecret', 'STRIPE_WEBHOOK_SECRET', 'text'],
  // Set by the launcher (its own redis-server) unless given from outside.
  ['redisUrl', 'REDIS_URL', 'text', ''],
  ['workerConcurrency', 'WORKER_CONCURRENCY', 'int', 8],
  ['sweepIntervalMs', 'SWEEP_INTERVAL_MS', 'int', 1000],
];

const KINDS = {
  text: (raw) => raw,
  int: (raw) => (/^\s*-?\d+\s*$/.test(raw) && Number.isSafeInteger(Number(raw)) ? Number(raw) : undefined),
};

function load(env) {
  const out = {};
  for (const [key, variable, kind, fallback] of SETTINGS) {
    const raw = env[variable];
    if (raw === undefined || raw === '') {
      if (fallback === undefined) throw new Error(`missing required environment variable ${variable}`);
      out[key] = fallback;
      continue;
    }
    const value = KINDS[kind](raw);
    if (value === undefined) throw new Error(`${variable} must be ${kind === 'int' ? 'an integer' : kind}, got ${JSON.stringify(raw)}`);
    out[key] = value;
  }
  return Object.freeze(out);
}

module.exports = { config: load(process.env) };
