"""The emulator's state: PaymentIntents, charges, refunds, events. No HTTP here.

Operations run synchronously on the event loop, so each is atomic; they return
the response and the events it caused, and the ASGI layer delivers those. The
PaymentIntent state machine is in `intents.py`, charges and refunds in `money.py`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from harness.emulator import intents, money
from harness.emulator import params as p
from harness.emulator.clock import Clock, IdSource, SystemClock
from harness.emulator.defaults import API_VERSION
from harness.emulator.delivery import DeliverySettings, Dispatcher, Endpoint, Sender
from harness.emulator.errors import StripeError
from harness.emulator.faults import FaultRule
from harness.emulator.idempotency import IdempotencyStore
from harness.emulator.listing import (
    LIST_PARAMS,
    Collection,
    created_filter,
    expand,
    list_records,
    page,
    where,
)
from harness.emulator.resources import (
    Event,
    Outcome,
    PaymentIntent,
    RequestContext,
    payment_method_json,
)

__all__ = ["Emulator", "Outcome", "RequestContext"]


class Emulator:
    def __init__(
        self,
        *,
        sender: Sender,
        clock: Clock | None = None,
        seed: int = 0,
        delivery: DeliverySettings | None = None,
        api_version: str = API_VERSION,
    ) -> None:
        self.clock = clock or SystemClock()
        self.seed = seed
        self.api_version = api_version
        self.ids = IdSource(seed)
        self.rng = random.Random(seed)
        self.intents: Collection[PaymentIntent] = Collection()
        self.charges: Collection[dict[str, Any]] = Collection()
        self.refunds: Collection[dict[str, Any]] = Collection()
        self.balance_transactions: dict[str, money.BalanceTransaction] = {}
        self.events: Collection[Event] = Collection()
        self.idempotency = IdempotencyStore()
        self.fault_rules: list[FaultRule] = []
        self.requests: list[dict[str, Any]] = []
        self.dispatcher = Dispatcher(self.clock, sender, delivery or DeliverySettings(), seed)
        self._fault_seq = 0

    async def reset(self) -> None:
        """Forget everything but the endpoints; ids restart from the seed."""
        await self.dispatcher.cancel_all()
        self.dispatcher.attempts.clear()
        self.dispatcher.clear_rules()
        self.ids = IdSource(self.seed)
        self.rng = random.Random(self.seed)
        self.dispatcher.rng = random.Random(self.seed)
        for collection in (self.intents, self.charges, self.refunds, self.events):
            collection.clear()
        self.balance_transactions.clear()
        self.idempotency = IdempotencyStore()
        self.fault_rules.clear()
        self.requests.clear()

    # -- configuration ------------------------------------------------------------

    def add_endpoint(self, url: str, secret: str) -> Endpoint:
        if not secret.startswith("whsec_"):
            raise StripeError.invalid_request(
                "webhook secret must start with whsec_", param="secret"
            )
        # Numbered, not drawn from `ids`: endpoints survive a reset, ids restart.
        endpoint = Endpoint(url=url, secret=secret, id=f"we_{len(self.dispatcher.endpoints) + 1}")
        self.dispatcher.endpoints.append(endpoint)
        return endpoint

    def add_fault(self, rule: FaultRule) -> FaultRule:
        self._fault_seq += 1
        rule.id = rule.id or f"fault_{self._fault_seq}"
        self.fault_rules.append(rule)
        return rule

    def match_fault(self, method: str, path: str, params: dict[str, Any]) -> FaultRule | None:
        for rule in self.fault_rules:
            if rule.matches(method, path, params, self.rng):
                rule.fired += 1
                return rule
        return None

    # -- PaymentIntents (the state machine is in intents.py) ----------------------------

    def create_intent(self, params: dict[str, Any], ctx: RequestContext) -> Outcome:
        return intents.create(self, params, ctx)

    def update_intent(self, ident: str, params: dict[str, Any], ctx: RequestContext) -> Outcome:
        return intents.update(self, ident, params, ctx)

    def confirm_intent(self, ident: str, params: dict[str, Any], ctx: RequestContext) -> Outcome:
        return intents.confirm(self, ident, params, ctx)

    def capture_intent(self, ident: str, params: dict[str, Any], ctx: RequestContext) -> Outcome:
        return intents.capture(self, ident, params, ctx)

    def cancel_intent(self, ident: str, params: dict[str, Any], ctx: RequestContext) -> Outcome:
        return intents.cancel(self, ident, params, ctx)

    def authenticate(self, ident: str) -> Outcome:
        return intents.authenticate(self, ident)

    def fail_authentication(self, ident: str) -> Outcome:
        return intents.fail_authentication(self, ident)

    def abandon(self, ident: str) -> Outcome:
        return intents.abandon(self, ident)

    def retrieve_intent(self, ident: str, params: dict[str, Any]) -> Outcome:
        p.reject_unknown(params, {"expand", "client_secret"})
        return Outcome(200, self.intent(ident).to_json())

    def list_intents(self, params: dict[str, Any]) -> Outcome:
        p.reject_unknown(params, LIST_PARAMS | {"customer"})
        body = page(
            self.intents,
            params,
            url="/v1/payment_intents",
            kind="payment_intent",
            matches=where(params, lambda i: i.created, customer=lambda i: i.customer),
            render=PaymentIntent.to_json,
        )
        return Outcome(200, body)

    # -- charges, refunds, events -------------------------------------------------------

    def retrieve_charge(self, ident: str, params: dict[str, Any]) -> Outcome:
        p.reject_unknown(params, {"expand"})
        return Outcome(200, dict(self.charge(ident)))

    def list_charges(self, params: dict[str, Any]) -> Outcome:
        filters = ("payment_intent", "customer")
        body = list_records(self.charges, params, url="/v1/charges", kind="charge", filters=filters)
        return Outcome(200, body)

    def create_refund(self, params: dict[str, Any], ctx: RequestContext) -> Outcome:
        return money.create_refund(self, params, ctx)

    def retrieve_refund(self, ident: str, params: dict[str, Any]) -> Outcome:
        p.reject_unknown(params, {"expand"})
        refund = self.refunds.get(ident)
        if refund is None:
            raise StripeError.missing("refund", ident)
        return Outcome(200, dict(refund))

    def list_refunds(self, params: dict[str, Any]) -> Outcome:
        filters = ("charge", "payment_intent")
        body = list_records(self.refunds, params, url="/v1/refunds", kind="refund", filters=filters)
        return Outcome(200, body)

    def retrieve_event(self, ident: str, params: dict[str, Any]) -> Outcome:
        p.reject_unknown(params, {"expand"})
        event = self.events.get(ident)
        if event is None:
            raise StripeError.missing("event", ident)
        return Outcome(200, event.to_json())

    def list_events(self, params: dict[str, Any]) -> Outcome:
        p.reject_unknown(params, LIST_PARAMS | {"type", "types", "delivery_success"})
        created = created_filter(params.get("created"))
        single = p.optional_str(params, "type")
        several = p.string_list(params.get("types"), "types")
        if single is not None and several is not None:
            raise StripeError.invalid_param(
                "You may only specify one of these parameters: type, types."
            )
        patterns = several if several is not None else [single] if single else None

        def wanted(event: Event) -> bool:
            if not created(event.created):
                return False
            return patterns is None or any(_type_matches(t, event.type) for t in patterns)

        body = page(
            self.events,
            params,
            url="/v1/events",
            kind="event",
            matches=wanted,
            render=Event.to_json,
        )
        return Outcome(200, body)

    # -- shared by the operations -------------------------------------------------------

    def intent(self, ident: str) -> PaymentIntent:
        intent = self.intents.get(ident)
        if intent is None:
            raise StripeError.missing("payment_intent", ident, param="intent")
        return intent

    def charge(self, ident: str) -> dict[str, Any]:
        charge = self.charges.get(ident)
        if charge is None:
            raise StripeError.missing("charge", ident, param="charge")
        return charge

    def event(
        self,
        type_: str,
        intent: PaymentIntent,
        ctx: RequestContext,
        data_object: dict[str, Any] | None = None,
        previous: dict[str, Any] | None = None,
    ) -> Event:
        event = Event(
            id=self.ids.new("evt"),
            type=type_,
            created=int(self.clock.now()),
            data_object=dict(data_object) if data_object is not None else intent.to_json(),
            request_id=ctx.request_id,
            idempotency_key=ctx.idempotency_key,
            api_version=self.api_version,
            previous_attributes=previous,
        )
        self.events.add(event.id, event)
        return event

    def set_status(self, intent: PaymentIntent, status: str) -> None:
        intent.status = status
        intent.status_history.append((self.clock.now(), status))

    def resolve(self, kind: str, ident: Any, parent: dict[str, Any]) -> dict[str, Any]:
        """An expanded object for `expand[]` (listing.expand calls this)."""
        if kind == "charge":
            return dict(self.charge(str(ident)))
        if kind == "payment_intent":
            return self.intent(str(ident)).to_json()
        if kind == "payment_method":
            return payment_method_json(str(ident), int(parent.get("created", 0)))
        if kind == "balance_transaction":
            return self.balance_transactions[str(ident)].to_json()
        refunds = [dict(r) for r in self.refunds.values() if r["charge"] == parent["id"]]
        return {
            "object": "list",
            "data": list(reversed(refunds)),
            "has_more": False,
            "url": f"/v1/charges/{parent['id']}/refunds",
        }

    def expand(self, body: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        return expand(body, paths, self.resolve)

    # -- inspection ----------------------------------------------------------------------------

    def snapshot(
        self, metadata_prefix: tuple[str, str] | None = None, *, compact: bool = False
    ) -> dict[str, Any]:
        """Everything, or with `metadata_prefix=(key, prefix)` only the intents whose
        metadata[key] starts with prefix and what belongs to them (charges, refunds,
        events, their deliveries, requests and idempotency keys): a caller watching
        its own users need not copy a long run's whole history on every look.

        `compact`: only what a verdict reads, for a long run's many intents:
        each intent's id, status, amount, currency and metadata; each event's id,
        type and object reference; the deliveries the service acknowledged (a
        genuine signature answered 2xx: what settling and the diagnosis read); and
        the requests that were answered with an error (their message)."""
        if compact:
            return self._compact(metadata_prefix)
        intent_list = self.intents.values()
        charges, refunds = self.charges.values(), self.refunds.values()
        events, attempts, requests = self.events.values(), self.dispatcher.attempts, self.requests
        keys = list(self.idempotency.records.values())
        if metadata_prefix is not None:
            key, prefix = metadata_prefix
            intent_list = [
                i for i in intent_list if str(i.metadata.get(key, "")).startswith(prefix)
            ]
            ids = {i.id for i in intent_list}
            charges = [c for c in charges if c.get("payment_intent") in ids]
            refunds = [r for r in refunds if r.get("payment_intent") in ids]
            events = [e for e in events if e.intent_id in ids]
            event_ids = {e.id for e in events}
            attempts = [a for a in attempts if a.event_id in event_ids]
            requests = [r for r in requests if r.get("intent_id") in ids]
            used = {r.get("idempotency_key") for r in requests}
            keys = [k for k in keys if k.key in used]
        return {
            "seed": self.seed,
            "now": self.clock.now(),
            "intents": [{**i.to_json(), "status_history": i.status_history} for i in intent_list],
            "charges": charges,
            "refunds": refunds,
            "events": [e.to_json() for e in events],
            "idempotency_keys": [r.to_json() for r in keys],
            "deliveries": [a.to_json() for a in attempts],
            "held": [{"event_id": e.id, "endpoint_id": ep.id} for e, ep in self.dispatcher.held],
            "endpoints": [e.to_json() for e in self.dispatcher.endpoints],
            "delivery_rules": [r.to_json() for r in self.dispatcher.rules],
            "fault_rules": [r.to_json() for r in self.fault_rules],
            "requests": list(requests),
            "deliveries_in_progress": self.dispatcher.in_progress,
        }

    def _compact(self, metadata_prefix: tuple[str, str] | None) -> dict[str, Any]:
        intent_list: Iterable[PaymentIntent] = self.intents.values()
        if metadata_prefix is not None:
            key, prefix = metadata_prefix
            intent_list = [
                i for i in intent_list if str(i.metadata.get(key, "")).startswith(prefix)
            ]
        brief = [
            {
                "id": i.id,
                "status": i.status,
                "amount": i.amount,
                "currency": i.currency,
                "metadata": dict(i.metadata),
            }
            for i in intent_list
        ]
        ids = {i["id"] for i in brief}
        events = [e for e in self.events.values() if e.intent_id in ids]
        event_ids = {e.id for e in events}
        return {
            "intents": brief,
            "events": [_event_reference(e.to_json()) for e in events],
            "deliveries": [
                a.to_json()
                for a in self.dispatcher.attempts
                if a.accepted and a.signature == "valid" and a.event_id in event_ids
            ],
            "requests": [
                r for r in self.requests if r.get("intent_id") in ids and r.get("error_message")
            ],
            "deliveries_in_progress": self.dispatcher.in_progress,
        }


def _event_reference(event: dict[str, Any]) -> dict[str, Any]:
    """An event without its payload's copy of the object: what it is about."""
    obj = event["data"]["object"]
    kept = {k: obj[k] for k in ("id", "object", "payment_intent") if k in obj}
    return {"id": event["id"], "type": event["type"], "data": {"object": kept}}


def _type_matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type
