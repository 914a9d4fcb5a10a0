'use strict';

// The Stripe events this service acts on, and the PaymentIntent each names.

const { defect } = require('./defects');
const { isObject } = require('./validation');

const INTENT_EVENTS = new Set([
  'payment_intent.succeeded',
  'payment_intent.payment_failed',
  'payment_intent.canceled',
]);

/** Event types that reach the inbox and the queue; anything else is acknowledged and ignored. */
function handled(type) {
  if (INTENT_EVENTS.has(type)) return true;
  // "Some accounts only send charge events": a succeeded charge credits as well.
  return type === 'charge.succeeded' && defect('trust-event-type');
}

/** The PaymentIntent an event is about, or null when its object names none. */
function intentIdOf(event) {
  const object = isObject(event.data) ? event.data.object : null;
  if (!isObject(object)) return null;
  if (object.object === 'payment_intent' && typeof object.id === 'string' && object.id) return object.id;
  if (object.object === 'charge' && typeof object.payment_intent === 'string' && object.payment_intent) {
    return object.payment_intent;
  }
  return null;
}

module.exports = { handled, intentIdOf, INTENT_EVENTS };
