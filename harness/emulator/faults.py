"""API faults by rule: latency, error statuses, and "commit then drop"."""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, with_config

from harness.emulator.delivery import RULE_CONFIG, NonNegative, Probability

FaultKind = Literal["latency", "error", "commit_then_drop"]
DropStyle = Literal["reset", "500"]


@with_config(RULE_CONFIG)
@dataclass
class FaultRule:
    """Applies to requests whose path matches `path` (regex, search) and, when
    given, whose method, payment method and metadata match. `times` bounds how
    often it fires; `probability` draws from the emulator's seeded generator."""

    kind: FaultKind
    path: str = r"^/v1/"
    method: str | None = None
    payment_method: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    latency_s: NonNegative = 0.0
    status: Annotated[int, Field(ge=400, le=599)] = 500  # an HTTP error status
    # Sent as Stripe-Should-Retry with an error: false makes the SDKs give up at
    # once (Stripe sends it where a retry could not help); None sends no header.
    should_retry: bool | None = None
    drop: DropStyle = "reset"
    times: Annotated[int, Field(ge=0)] | None = None
    probability: Probability = 1.0
    # Kept by the emulator: init=False, so a request that names them is refused.
    id: str = field(default="", init=False)
    fired: int = field(default=0, init=False)

    def matches(self, method: str, path: str, params: dict[str, Any], rng: random.Random) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if not re.search(self.path, path):
            return False
        if self.payment_method is not None and params.get("payment_method") != self.payment_method:
            return False
        meta = params.get("metadata") or {}
        if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in self.metadata.items()):
            return False
        return self.probability >= 1.0 or rng.random() < self.probability

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
