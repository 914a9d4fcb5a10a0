// The emulator through the official Node SDK (stripe-node): purchase, 3-D
// Secure, declines, idempotency, the SDK's own retry after a dropped response,
// and webhooks verified with stripe.webhooks.constructEvent on a real endpoint.
//
// Run by tests/integration/test_emulator_node.py, which installs the SDK and
// passes: STRIPE_NODE_MODULE (path of the installed package), EMULATOR_URL.
// Prints one JSON line per passed check; exits 1 on the first failure.
"use strict";

const assert = require("node:assert/strict");
const http = require("node:http");
const Stripe = require(process.env.STRIPE_NODE_MODULE);

const EMULATOR = new URL(process.env.EMULATOR_URL);
const SECRET = "whsec_node_sink_secret";

const stripe = new Stripe("sk_test_node", {
  host: EMULATOR.hostname,
  port: Number(EMULATOR.port),
  protocol: "http",
  maxNetworkRetries: 2,
});

const received = []; // {id, type, verified, error}

function startSink() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const payload = Buffer.concat(chunks);
      const header = req.headers["stripe-signature"];
      let entry;
      try {
        const event = stripe.webhooks.constructEvent(payload, header, SECRET);
        entry = { id: event.id, type: event.type, verified: true, error: null, object: event.data.object };
      } catch (err) {
        const body = JSON.parse(payload.toString("utf8"));
        entry = { id: body.id, type: body.type, verified: false, error: err.type, object: body.data.object };
      }
      received.push(entry);
      res.writeHead(entry.verified ? 200 : 400).end();
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

async function control(method, path, body) {
  const response = await fetch(new URL(`/_control${path}`, EMULATOR), {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  assert.equal(response.status, 200, `control ${path}: ${JSON.stringify(json)}`);
  return json;
}

async function waitFor(predicate, what, withinMs = 10000) {
  const deadline = Date.now() + withinMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    // Poll, not sleep: the loop ends as soon as the deliveries have arrived.
    await new Promise((r) => setTimeout(r, 10));
  }
}

function eventsFor(intentId) {
  return received.filter((e) => e.object.id === intentId || e.object.payment_intent === intentId);
}

/** A card payment confirmed at once, as a service that takes cards makes it. */
function payByCard(amount, more = {}) {
  return stripe.paymentIntents.create({
    amount,
    currency: "usd",
    confirm: true,
    payment_method: "pm_card_visa",
    payment_method_types: ["card"],
    ...more,
  });
}

function passed(check, detail = {}) {
  console.log(JSON.stringify({ check, ...detail }));
}

async function main() {
  const sink = await startSink();
  await control("POST", "/webhook_endpoints", {
    url: `http://127.0.0.1:${sink.address().port}/webhooks`,
    secret: SECRET,
  });

  // A card purchase: succeeded at once, three signed events.
  const paid = await payByCard(999, { metadata: { userId: "node-fan" } });
  assert.equal(paid.status, "succeeded");
  assert.equal(paid.metadata.userId, "node-fan");
  assert.ok(paid.client_secret.startsWith(`${paid.id}_secret_`));
  await waitFor(() => eventsFor(paid.id).length >= 3, "three events for the purchase");
  assert.deepEqual(eventsFor(paid.id).map((e) => e.type).sort(), [
    "charge.succeeded",
    "payment_intent.created",
    "payment_intent.succeeded",
  ]);
  assert.ok(eventsFor(paid.id).every((e) => e.verified));
  passed("purchase", { intent: paid.id });

  // Retrieve and list see the same intent.
  const again = await stripe.paymentIntents.retrieve(paid.id);
  assert.equal(again.status, "succeeded");
  const listed = await stripe.paymentIntents.list({ limit: 10 });
  assert.ok(listed.data.some((i) => i.id === paid.id));
  passed("retrieve_and_list");

  // Declines: a StripeCardError with Stripe's codes; the intent waits for a new method.
  for (const [method, declineCode] of [
    ["pm_card_chargeDeclined", "generic_decline"],
    ["pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"],
  ]) {
    await assert.rejects(
      payByCard(500, { payment_method: method }),
      (err) => {
        assert.equal(err.type, "StripeCardError");
        assert.equal(err.statusCode, 402);
        assert.equal(err.code, "card_declined");
        assert.equal(err.decline_code, declineCode);
        assert.equal(err.payment_intent.status, "requires_payment_method");
        assert.ok(err.charge && err.charge.startsWith("ch_"));
        return true;
      },
    );
  }
  passed("declines");

  // 3-D Secure: requires_action until the customer authenticates.
  const challenged = await stripe.paymentIntents.create({
    amount: 1500,
    currency: "usd",
    confirm: true,
    payment_method: "pm_card_threeDSecure2Required",
    return_url: "https://example.test/return",
  });
  assert.equal(challenged.status, "requires_action");
  assert.ok(challenged.next_action);
  await control("POST", `/payment_intents/${challenged.id}/authenticate`);
  assert.equal((await stripe.paymentIntents.retrieve(challenged.id)).status, "succeeded");
  await waitFor(
    () => eventsFor(challenged.id).some((e) => e.type === "payment_intent.succeeded"),
    "the 3DS intent's succeeded event",
  );
  passed("three_ds", { intent: challenged.id });

  // Create without confirm, then confirm and cancel through the SDK.
  const pending = await stripe.paymentIntents.create({ amount: 700, currency: "usd" });
  assert.equal(pending.status, "requires_payment_method");
  const canceled = await stripe.paymentIntents.cancel(pending.id);
  assert.equal(canceled.status, "canceled");
  const later = await stripe.paymentIntents.create({ amount: 700, currency: "usd", payment_method: "pm_card_visa" });
  assert.equal(later.status, "requires_confirmation");
  // Automatic payment methods are on by default: a server-side confirm needs a return_url.
  await assert.rejects(stripe.paymentIntents.confirm(later.id), (err) => {
    assert.equal(err.type, "StripeInvalidRequestError");
    assert.match(err.message, /A `return_url` must be specified/);
    return true;
  });
  const confirmed = await stripe.paymentIntents.confirm(later.id, {
    return_url: "https://example.test/return",
    expand: ["latest_charge"],
  });
  assert.equal(confirmed.status, "succeeded");
  assert.equal(confirmed.latest_charge.object, "charge");
  assert.equal(confirmed.latest_charge.payment_method_details.card.last4, "4242");
  passed("confirm_and_cancel");

  // Pagination: autoPagingEach visits every intent once, newest first.
  const made = [];
  for (let i = 0; i < 25; i += 1) {
    made.push((await stripe.paymentIntents.create({ amount: 100 + i, currency: "usd" })).id);
  }
  const seen = [];
  await stripe.paymentIntents.list({ limit: 10 }).autoPagingEach((intent) => {
    seen.push(intent.id);
  });
  assert.equal(new Set(seen).size, seen.length);
  assert.deepEqual(seen.slice(0, 25), [...made].reverse());

  // Events can be fetched again, as a service that distrusts payloads does.
  const events = await stripe.events.list({ type: "payment_intent.succeeded", limit: 1 });
  const again2 = await stripe.events.retrieve(events.data[0].id);
  assert.equal(again2.type, "payment_intent.succeeded");
  passed("pagination_and_events", { listed: seen.length });

  // Off session a card that needs 3-D Secure is declined at once.
  await assert.rejects(
    payByCard(800, { off_session: true, payment_method: "pm_card_authenticationRequired" }),
    (err) => {
      assert.equal(err.type, "StripeCardError");
      assert.equal(err.code, "authentication_required");
      assert.equal(err.payment_intent.status, "requires_payment_method");
      return true;
    },
  );
  // A refund, partial then the rest; the charge ends refunded.
  const refunded = await stripe.paymentIntents.create({
    amount: 900,
    currency: "usd",
    confirm: true,
    payment_method: "pm_card_visa",
    return_url: "https://example.test/return",
  });
  await stripe.refunds.create({ payment_intent: refunded.id, amount: 400 });
  await stripe.refunds.create({ charge: refunded.latest_charge });
  const charge = await stripe.charges.retrieve(refunded.latest_charge);
  assert.equal(charge.refunded, true);
  assert.equal(charge.amount_refunded, 900);
  // Only a test key is accepted.
  const live = new Stripe("sk_live_nope", {
    host: EMULATOR.hostname,
    port: Number(EMULATOR.port),
    protocol: "http",
  });
  await assert.rejects(live.paymentIntents.list(), (err) => err.type === "StripeAuthenticationError");
  passed("off_session_refund_auth");

  // Idempotency: the same key replays; other parameters with it are refused.
  const params = { amount: 2500, currency: "usd", payment_method: "pm_card_visa" };
  const first = await stripe.paymentIntents.create(params, { idempotencyKey: "node-key-1" });
  const replay = await stripe.paymentIntents.create(params, { idempotencyKey: "node-key-1" });
  assert.equal(replay.id, first.id);
  assert.equal(replay.lastResponse.headers["idempotent-replayed"], "true");
  await assert.rejects(
    stripe.paymentIntents.create({ ...params, amount: 2600 }, { idempotencyKey: "node-key-1" }),
    (err) => err.type === "StripeIdempotencyError" && err.statusCode === 400,
  );
  passed("idempotency", { intent: first.id });

  // The charge commits but the response is lost: the SDK retries with its own key
  // and learns the outcome from the replay, so one intent exists.
  await control("POST", "/faults", { kind: "commit_then_drop", path: "^/v1/payment_intents$", times: 1 });
  const retried = await payByCard(3300, { metadata: { check: "dropped" } });
  assert.equal(retried.status, "succeeded");
  passed("retry_after_dropped_response", { intent: retried.id });

  // A forged signature is refused by constructEvent; the genuine copy follows.
  await control("POST", "/delivery_rules", { mode: "forge", event_type: "payment_intent.succeeded", times: 1 });
  const forgedFor = await payByCard(100);
  await waitFor(
    () => eventsFor(forgedFor.id).filter((e) => e.type === "payment_intent.succeeded").length >= 2,
    "the forged and the genuine copy",
  );
  const copies = eventsFor(forgedFor.id).filter((e) => e.type === "payment_intent.succeeded");
  assert.deepEqual(
    copies.map((e) => [e.verified, e.error]),
    [
      [false, "StripeSignatureVerificationError"],
      [true, null],
    ],
  );
  passed("forged_signature_rejected", { intent: forgedFor.id });

  sink.close();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
