'use strict';

const Stripe = require('stripe');
const { config } = require('./config');

/** stripe-node takes host/port/protocol, not a base URL: split STRIPE_API_BASE. */
function stripeOptions(base, { timeout }) {
  const url = new URL(base);
  const protocol = url.protocol.replace(/:$/, '');
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : protocol === 'https' ? 443 : 80,
    protocol,
    // The SDK's retries of a POST reuse its Idempotency-Key.
    maxNetworkRetries: 2,
    timeout,
    telemetry: false,
  };
}

function createStripe({ timeout = 30_000 } = {}) {
  return new Stripe(config.stripeSecretKey, stripeOptions(config.stripeApiBase, { timeout }));
}

module.exports = { createStripe, Stripe };
