'use strict';

const Stripe = require('stripe');
const { config } = require('./config');

function stripeOptions(base) {
  const url = new URL(base);
  const protocol = url.protocol.replace(':', '');
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : protocol === 'https' ? 443 : 80,
    protocol,
    maxNetworkRetries: 2, // retried POSTs keep their Idempotency-Key
    timeout: 30_000,
    telemetry: false,
  };
}

const stripe = new Stripe(config.stripeSecretKey, stripeOptions(config.stripeApiBase));

module.exports = { stripe };
