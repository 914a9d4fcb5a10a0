"""API faults by rule: latency, error statuses, and "commit then drop"."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["latency", "error", "commit_then_drop"]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]
DropStyle = Literal["reset", "500"]


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
    latency_s: float = 0.0
    status: int = 500
    # Sent as Stripe-Should-Retry with an error: false makes the SDKs give up at
    # once (Stripe sends it where a retry could not help); None sends no header.
    should_retry: bool | None = None
    drop: DropStyle = "reset"
    times: int | None = None
    probability: float = 1.0
    id: str = ""
    fired: int = 0

    def problem(self) -> str | None:
        """What is wrong with this rule, if anything (for the control API's 400)."""
        if not 400 <= self.status <= 599:
            return f"status must be an HTTP error status (400-599), not {self.status}"
        if self.probability > 1:
            return f"probability must be at most 1, not {self.probability}"
        return None

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
        return {
            "id": self.id,
            "kind": self.kind,
            "path": self.path,
            "method": self.method,
            "payment_method": self.payment_method,
            "metadata": self.metadata,
            "latency_s": self.latency_s,
            "status": self.status,
            "should_retry": self.should_retry,
            "drop": self.drop,
            "times": self.times,
            "probability": self.probability,
            "fired": self.fired,
        }
