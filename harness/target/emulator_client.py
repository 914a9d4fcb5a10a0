"""The harness's handle on a running Stripe emulator, over its `/_control/` API.

The same client drives an emulator in a thread of this process or one running
elsewhere, so the harness has one way to talk to it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from harness.errors import SetupError
from harness.waiting import wait_until


class EmulatorControlError(SetupError):
    """The emulator refused a control request (the message says why)."""


class EmulatorClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        metadata_names: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)
        # The service's names for the contract's metadata keys (its dialect):
        # state() answers with the contract's names beside them.
        self.metadata_names = dict(metadata_names or {})

    def speaking(self, metadata_names: Mapping[str, str]) -> EmulatorClient:
        """The same emulator, read with a dialect's metadata names."""
        if not metadata_names:
            return self
        return EmulatorClient(self.base_url, metadata_names=metadata_names)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, f"/_control{path}", json=body)
        except httpx.HTTPError as exc:
            raise EmulatorControlError(
                f"cannot reach the Stripe emulator at {self.base_url}: {exc}"
            ) from exc
        if response.status_code >= 400:
            raise EmulatorControlError(f"{method} /_control{path}: {response.text}")
        return response.json()

    def state(
        self, *, metadata_prefix: tuple[str, str] | None = None, compact: bool = False
    ) -> dict[str, Any]:
        """The emulator's state; with `metadata_prefix=(key, prefix)`, only the intents
        whose metadata[key] starts with prefix and what belongs to them; `compact`:
        only what a verdict reads (a long load run's final state)."""
        query: dict[str, str] = {"compact": "1"} if compact else {}
        if metadata_prefix is not None:
            key, prefix = metadata_prefix
            key = self.metadata_names.get(key, key)
            query.update({"metadata_key": key, "metadata_prefix": prefix})
        path = "/state" + ("?" + urlencode(query) if query else "")
        result: dict[str, Any] = self._call("GET", path)
        if self.metadata_names:
            for intent in result.get("intents", ()):
                metadata = intent.get("metadata") or {}
                for contract_name, name in self.metadata_names.items():
                    if name in metadata:
                        metadata[contract_name] = metadata[name]
        return result

    def reset(self) -> None:
        self._call("POST", "/reset")

    def add_endpoint(self, url: str, secret: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", "/webhook_endpoints", {"url": url, "secret": secret}
        )
        return result

    def add_delivery_rule(self, mode: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/delivery_rules", {"mode": mode, **fields})
        return result

    def clear_delivery_rules(self) -> None:
        self._call("DELETE", "/delivery_rules")

    def add_fault(self, kind: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/faults", {"kind": kind, **fields})
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def release(self, event_type: str | None = None, intent_id: str | None = None) -> int:
        body = {"event_type": event_type, "intent_id": intent_id}
        released: int = self._call("POST", "/release", body)["released"]
        return released

    def customer(self, intent_id: str, action: str) -> dict[str, Any]:
        """`authenticate`, `fail` or `abandon` a 3-D Secure challenge."""
        result: dict[str, Any] = self._call("POST", f"/payment_intents/{intent_id}/{action}")
        return result

    def forge(self, intent_id: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/forge", {"intent_id": intent_id, **fields})
        return result

    def request_mark(self) -> int:
        """A point in the emulator's request log: what comes after it is
        `unanswered_since(mark)`'s to count."""
        total: int = self._call("GET", "/requests")["total"]
        return total

    def unanswered_since(self, mark: int) -> int:
        """How many API requests made after `mark` Stripe has not answered yet
        (earlier ones may never be: a connection a fault cut)."""
        count: int = self._call("GET", f"/requests?since={mark}")["unanswered"]
        return count

    def settled(self) -> dict[str, int]:
        result: dict[str, int] = self._call("GET", "/settled")
        return result

    def wait_settled(self, within: float = 30.0) -> None:
        """Until no delivery is in flight or waiting for a retry (held ones excepted).

        `within` bounds the time without progress, not the total: after a load run
        thousands of deliveries may drain for minutes, which is fine while the
        backlog shrinks.
        """
        best = self.settled()["in_progress"]
        while best > 0:
            wait_until(
                functools.partial(self._below, best),
                within=within,
                what=f"webhooks settle ({best} deliveries stuck in flight)",
                interval=0.05,
            )
            best = self.settled()["in_progress"]

    def _below(self, count: int) -> bool:
        return self.settled()["in_progress"] < count
