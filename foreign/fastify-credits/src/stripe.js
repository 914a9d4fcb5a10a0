// The official stripe-node client, pointed at STRIPE_API_BASE (the emulator in
// tests). maxNetworkRetries: the SDK retries connection errors, 409s and 5xx
// with the same Idempotency-Key, so a charge Stripe made before a dropped
// answer is found again instead of made twice.

import Stripe from 'stripe';

export function makeStripe(config) {
  return new Stripe(config.stripeSecretKey, {
    ...config.stripe, // host, port, protocol
    maxNetworkRetries: 2,
    timeout: 30_000,
    telemetry: false,
    appInfo: { name: 'fastify-credits' },
  });
}

export const StripeErrors = Stripe.errors;
