'use strict';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`missing required environment variable ${name}`);
  return value;
}

const config = {
  port: Number.parseInt(process.env.PORT || '3000', 10),
  host: process.env.HOST || '127.0.0.1',
  databaseUrl: required('DATABASE_URL'),
  jwtSecret: required('JWT_SECRET'),
  stripeSecretKey: required('STRIPE_SECRET_KEY'),
  stripeApiBase: process.env.STRIPE_API_BASE || 'https://api.stripe.com',
  stripeWebhookSecret: required('STRIPE_WEBHOOK_SECRET'),
};

// Price table: tokens -> USD cents (integers; never float money).
const TOKEN_PRICES_CENTS = Object.freeze({
  100: 99,
  500: 499,
  1000: 999,
  5000: 4999,
  10000: 9999,
});
const BONUS_THRESHOLD = 5000;
const BONUS_PERCENT = 5;
// A creator earns 0.05 USD per token received (kept as a string for NUMERIC).
const TOKEN_VALUE_USD = '0.05';

function bonusFor(tokens) {
  return tokens >= BONUS_THRESHOLD ? Math.floor((tokens * BONUS_PERCENT) / 100) : 0;
}

module.exports = { config, TOKEN_PRICES_CENTS, TOKEN_VALUE_USD, bonusFor };
