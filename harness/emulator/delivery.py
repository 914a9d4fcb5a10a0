"""Webhook delivery the harness controls: at-least-once, with rules for every
ordering and failure a real endpoint must survive.

Each event goes to every registered endpoint. The first rule that matches an
(event, endpoint) pair decides how; without one, it is delivered at once and
retried on non-2xx or timeout per the retry schedule.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, with_config

from harness.emulator.clock import Clock
from harness.emulator.defaults import DEFAULT_RETRY_DELAYS_S
from harness.emulator.resources import Event

Mode = Literal[
    "immediate",
    "delay",
    "hold",
    "duplicate",
    "parallel",
    "reorder",
    "before_response",
    "drop_first",
    "forge",
    "stale",
]
SignatureKind = Literal["valid", "forged", "stale"]
STALE_BY_S = 3600


@dataclass(frozen=True)
class SendResult:
    status: int | None
    error: str | None = None


# (url, body, headers, timeout) -> result. Injected so tests can observe sends.
Sender = Callable[[str, bytes, dict[str, str], float], Awaitable[SendResult]]


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """`t=...,v1=...`: HMAC-SHA256 of "{t}.{payload}" keyed by the whole whsec_ string."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass
class Endpoint:
    url: str
    secret: str
    id: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url}


# How the control API validates a rule given as JSON (pydantic, strict: no
# coercion, no unknown fields); the bounds below are part of the contract.
RULE_CONFIG = ConfigDict(strict=True, extra="forbid")
NonNegative = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=1)]


@with_config(RULE_CONFIG)
@dataclass
class DeliveryRule:
    """Match by event type (exact or `prefix.*`), intent id and metadata subset."""

    mode: Mode
    event_type: str | None = None
    intent_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    delay_s: NonNegative = 0.0
    copies: Count = 2
    window: Count = 2
    max_wait_s: NonNegative = 5.0
    times: Annotated[int, Field(ge=0)] | None = None  # events it applies to, then it retires
    probability: Probability = 1.0  # drawn from the emulator's seeded generator
    # Kept by the emulator: init=False, so a request that names them is refused.
    id: str = field(default="", init=False)
    matched: int = field(default=0, init=False)

    def matches(self, event: Event, rng: random.Random) -> bool:
        if self.times is not None and self.matched >= self.times:
            return False
        if self.event_type is not None:
            if self.event_type.endswith(".*"):
                if not event.type.startswith(self.event_type[:-1]):
                    return False
            elif event.type != self.event_type:
                return False
        if self.intent_id is not None and event.intent_id != self.intent_id:
            return False
        meta = event.metadata
        if not all(meta.get(k) == v for k, v in self.metadata.items()):
            return False
        return self.probability >= 1.0 or rng.random() < self.probability

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Attempt:
    event_id: str
    event_type: str
    endpoint_id: str
    copy: int
    number: int
    signature: SignatureKind
    started: float
    status: int | None = None
    error: str | None = None
    latency_s: float | None = None
    dropped: bool = False

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_json(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["attempt"] = fields.pop("number")
        return fields


@dataclass
class DeliverySettings:
    retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S
    attempt_timeout_s: float = 10.0
    # How long an API answer waits for its `before_response` deliveries. Stripe
    # never holds an answer for a webhook: the wait only puts the webhook first
    # where the service can take it while its purchase waits. A service that
    # serves one request at a time cannot; its webhook queues behind the
    # purchase, as with Stripe, instead of the emulator deadlocking it.
    before_response_within_s: float = 5.0


class Dispatcher:
    def __init__(
        self, clock: Clock, sender: Sender, settings: DeliverySettings, seed: int = 0
    ) -> None:
        self.clock = clock
        self.rng = random.Random(seed)
        self.sender = sender
        self.settings = settings
        self.endpoints: list[Endpoint] = []
        self.rules: list[DeliveryRule] = []
        self.attempts: list[Attempt] = []
        self.held: list[tuple[Event, Endpoint]] = []
        self._reorder: dict[str, list[tuple[Event, Endpoint]]] = {}
        self._reorder_flushed: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._rule_seq = 0

    # -- configuration ------------------------------------------------------------

    def add_rule(self, rule: DeliveryRule) -> DeliveryRule:
        self._rule_seq += 1
        rule.id = rule.id or f"rule_{self._rule_seq}"
        self.rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        self.rules.clear()

    # -- delivery -------------------------------------------------------------------

    async def dispatch(self, events: list[Event]) -> None:
        """Start delivering; returns once the `before_response` deliveries are
        answered, or `before_response_within_s` has passed (they go on)."""
        inline: list[asyncio.Task[None]] = []
        for event in events:
            for endpoint in self.endpoints:
                rule = next((r for r in self.rules if r.matches(event, self.rng)), None)
                if rule is not None:
                    rule.matched += 1
                if rule is not None and rule.mode == "before_response":
                    inline.append(self._spawn(self._deliver(event, endpoint, copy=1)))
                else:
                    self._spawn(self._route(event, endpoint, rule))
        if inline:
            await asyncio.wait(inline, timeout=self.settings.before_response_within_s)

    async def _route(self, event: Event, endpoint: Endpoint, rule: DeliveryRule | None) -> None:
        mode = rule.mode if rule else "immediate"
        if rule is None or mode == "immediate":
            await self._deliver(event, endpoint, copy=1)
        elif mode == "delay":
            await self.clock.sleep(rule.delay_s)
            await self._deliver(event, endpoint, copy=1)
        elif mode == "hold":
            self.held.append((event, endpoint))
        elif mode == "duplicate":
            for copy_no in range(1, rule.copies + 1):
                await self._deliver(event, endpoint, copy=copy_no)
        elif mode == "parallel":
            await asyncio.gather(
                *(self._deliver(event, endpoint, copy=c) for c in range(1, rule.copies + 1))
            )
        elif mode == "reorder":
            await self._reorder_add(rule, event, endpoint)
        elif mode == "drop_first":
            await self._deliver(event, endpoint, copy=1, drop_first=True)
        elif mode in ("forge", "stale"):
            # A bad copy first; the genuine event follows, as a retry would.
            kind: SignatureKind = "forged" if mode == "forge" else "stale"
            await self._attempt(event, endpoint, copy=0, number=1, signature=kind)
            await self._deliver(event, endpoint, copy=1)

    async def _reorder_add(self, rule: DeliveryRule, event: Event, endpoint: Endpoint) -> None:
        buffer = self._reorder.setdefault(rule.id, [])
        buffer.append((event, endpoint))
        if len(buffer) >= rule.window:
            flushed = self._reorder_flushed.pop(rule.id, None)
            if flushed is not None:
                flushed.set()
            await self._flush_reorder(rule.id)
            return
        if len(buffer) > 1:
            return  # the first event of the window waits for all of them
        # Bounded fallback: a window that never fills is flushed after
        # max_wait_s (emulator time), so no event is lost.
        flushed = self._reorder_flushed.setdefault(rule.id, asyncio.Event())
        timer = asyncio.ensure_future(self.clock.sleep(rule.max_wait_s))
        filled = asyncio.ensure_future(flushed.wait())
        try:
            await asyncio.wait({timer, filled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (timer, filled):
                waiter.cancel()
        if not flushed.is_set():
            self._reorder_flushed.pop(rule.id, None)
            await self._flush_reorder(rule.id)

    async def _flush_reorder(self, rule_id: str) -> None:
        batch = self._reorder.pop(rule_id, [])
        for event, endpoint in reversed(batch):
            await self._deliver(event, endpoint, copy=1)

    def release_held(self, event_type: str | None = None, intent_id: str | None = None) -> int:
        keep: list[tuple[Event, Endpoint]] = []
        release: list[tuple[Event, Endpoint]] = []
        for event, endpoint in self.held:
            wanted = (event_type is None or event.type == event_type) and (
                intent_id is None or event.intent_id == intent_id
            )
            (release if wanted else keep).append((event, endpoint))
        self.held = keep
        for event, endpoint in release:
            self._spawn(self._deliver(event, endpoint, copy=1))
        return len(release)

    async def _deliver(
        self, event: Event, endpoint: Endpoint, *, copy: int, drop_first: bool = False
    ) -> None:
        """One logical delivery: attempts until a 2xx or the schedule runs out."""
        schedule = (0.0, *self.settings.retry_delays_s)
        for number, wait_s in enumerate(schedule, start=1):
            if wait_s:
                await self.clock.sleep(wait_s)
            if drop_first and number == 1:
                self.attempts.append(
                    Attempt(
                        event.id,
                        event.type,
                        endpoint.id,
                        copy,
                        number,
                        "valid",
                        self.clock.now(),
                        error="dropped by rule",
                        dropped=True,
                    )
                )
                continue
            attempt = await self._attempt(event, endpoint, copy=copy, number=number)
            if attempt.accepted:
                return

    async def send_once(
        self, event: Event, endpoint: Endpoint, *, signature: SignatureKind = "valid"
    ) -> Attempt:
        """One attempt outside any rule and without retries (`/_control/forge`)."""
        return await self._attempt(event, endpoint, copy=0, number=1, signature=signature)

    async def _attempt(
        self,
        event: Event,
        endpoint: Endpoint,
        *,
        copy: int,
        number: int,
        signature: SignatureKind = "valid",
    ) -> Attempt:
        payload = event.payload()
        timestamp = int(self.clock.now())
        if signature == "stale":
            timestamp -= STALE_BY_S
        secret = endpoint.secret if signature != "forged" else endpoint.secret + "_forged"
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(payload, secret, timestamp),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        attempt = Attempt(
            event.id, event.type, endpoint.id, copy, number, signature, self.clock.now()
        )
        self.attempts.append(attempt)
        started = time.monotonic()
        result = await self.sender(endpoint.url, payload, headers, self.settings.attempt_timeout_s)
        attempt.latency_s = time.monotonic() - started
        attempt.status, attempt.error = result.status, result.error
        return attempt

    # -- bookkeeping ------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def in_progress(self) -> int:
        return sum(1 for t in self._tasks if not t.done())

    async def cancel_all(self) -> None:
        # Reset and shutdown: pending deliveries belong to a run that is over.
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self.held.clear()
        self._reorder.clear()
        self._reorder_flushed.clear()
