"""Locust load for tokenproof: fans purchase (card and 3-D Secure), tip, pay call
minutes, read their balance and sometimes retry with the same key.

Started by `tokenproof load`, which creates the users, writes the run's
configuration (TOKENPROOF_LOAD names the file) and, after the run, checks every
invariant on the recorded ops and the final state. This file only drives HTTP
and records ops: it imports nothing that runs asyncio, because Locust patches
the standard library with gevent.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from typing import Any

import jwt
from locust import FastHttpUser, between, events, task

# The one rule for outcomes (harness.history imports nothing that runs asyncio).
from harness.history import classify

_CONFIG: dict[str, Any] = {}
_RECORDER: Recorder | None = None


def config() -> dict[str, Any]:
    if not _CONFIG:
        path = os.environ.get("TOKENPROOF_LOAD")
        if not path:
            raise RuntimeError("run this through `tokenproof load` (TOKENPROOF_LOAD is unset)")
        with open(path, encoding="utf-8") as f:
            _CONFIG.update(json.load(f))
    return _CONFIG


class Recorder:
    """Ops as the harness's history records them (invoke, then ok / fail / info),
    one JSONL file per process."""

    def __init__(self, directory: str, started: float) -> None:
        self.started = started
        self.pid = os.getpid()
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._file = open(  # noqa: SIM115 - closed at test stop
            os.path.join(directory, f"history-{self.pid}.jsonl"), "a", encoding="utf-8"
        )

    def _write(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._file.write(json.dumps(record) + "\n")

    def invoke(self, worker: str, f: str, user: str | None, args: dict[str, Any]) -> dict[str, Any]:
        record = {
            "index": 0,
            "process": self.pid * 10_000_000 + next(self._ids),
            "type": "invoke",
            "worker": worker,
            "f": f,
            "user": user,
            "args": args,
            "time_s": round(time.time() - self.started, 6),
            "status": None,
            "body": None,
            "error": None,
        }
        self._write(record)
        return record

    def complete(
        self, invoke: dict[str, Any], status: int | None, body: Any, error: str | None
    ) -> None:
        self._write(
            {
                **invoke,
                "type": classify(status or None),
                "status": status or None,
                "body": body,
                "error": error,
                "time_s": round(time.time() - self.started, 6),
            }
        )

    def close(self) -> None:
        with self._lock:
            self._file.close()


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _start(environment: Any, **kwargs: Any) -> None:
    global _RECORDER
    cfg = config()
    if _RECORDER is None:
        _RECORDER = Recorder(cfg["history_dir"], cfg["started"])


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _stop(environment: Any, **kwargs: Any) -> None:
    if _RECORDER is not None:
        _RECORDER.close()


class Fan(FastHttpUser):
    wait_time = between(0.0, 0.05)
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        cfg = config()
        self.rng = random.Random()
        self.me = self.rng.choice(cfg["fans"])
        self.creators = cfg["creators"]
        self.token = jwt.encode(
            {"sub": self.me, "exp": int(time.time()) + 86_400}, cfg["jwt_secret"], algorithm="HS256"
        )
        self.name_ = f"{os.getpid()}-{id(self)}"
        self.last_keyed: tuple[str, str, dict[str, Any]] | None = None

    def _send(self, f: str, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        assert _RECORDER is not None
        invoke = _RECORDER.invoke(self.name_, f, self.me, body or {})
        headers = {"Authorization": f"Bearer {self.token}"}
        with self.client.request(
            method, path, json=body, headers=headers, name=f, catch_response=True
        ) as response:
            status = response.status_code or None
            try:
                parsed = response.json()
            except Exception:
                parsed = response.text
            error = None if status else str(response.error)
            _RECORDER.complete(invoke, status, parsed, error)
            if status is not None and status < 500:
                response.success()  # 4xx is the contract's refusal, not a load failure
            else:
                response.failure(f"{f} answered {status}")
        return status or 0, parsed

    def _key(self) -> str | None:
        return f"k-{self.rng.getrandbits(48):x}" if self.rng.random() < 0.5 else None

    @task(5)
    def tip(self) -> None:
        body: dict[str, Any] = {
            "creatorId": self.rng.choice(self.creators),
            "tokenAmount": self.rng.randint(1, 5),
            "channel": "load",
        }
        if key := self._key():
            body["clientIdempotencyKey"] = key
            self.last_keyed = ("tip", "/api/tokens/tip", body)
        self._send("tip", "POST", "/api/tokens/tip", body)

    @task(3)
    def deduct(self) -> None:
        body: dict[str, Any] = {
            "creatorId": self.rng.choice(self.creators),
            "tokenAmount": self.rng.randint(1, 3),
            "callId": f"call-{self.rng.randint(1, 50)}",
        }
        if key := self._key():
            body["clientIdempotencyKey"] = key
            self.last_keyed = ("deduct", "/api/tokens/calls/deduct", body)
        self._send("deduct", "POST", "/api/tokens/calls/deduct", body)

    @task(3)
    def balance(self) -> None:
        self._send("balance", "GET", "/api/tokens/balance", None)

    @task(1)
    def purchase_card(self) -> None:
        method = "pm_card_chargeDeclined" if self.rng.random() < 0.1 else "pm_card_visa"
        body: dict[str, Any] = {
            "tokenAmount": self.rng.choice([100, 500]),
            "paymentMethodId": method,
            "clientIdempotencyKey": f"p-{self.rng.getrandbits(48):x}",
        }
        self.last_keyed = ("purchase", "/api/tokens/purchase", body)
        self._send("purchase", "POST", "/api/tokens/purchase", body)

    @task(1)
    def purchase_three_ds(self) -> None:
        body = {"tokenAmount": 100, "paymentMethodId": "pm_card_threeDSecure2Required"}
        status, answer = self._send("purchase", "POST", "/api/tokens/purchase", body)
        if status == 200 and isinstance(answer, dict):
            intent = answer["paymentIntent"]["id"]
            action = "abandon" if self.rng.random() < 0.25 else "authenticate"
            # The customer's side of 3-D Secure, at the emulator.
            self.client.post(
                f"{config()['emulator_url']}/_control/payment_intents/{intent}/{action}",
                name="3ds-customer",
            )

    @task(1)
    def retry_last(self) -> None:
        if self.last_keyed is not None:
            f, path, body = self.last_keyed
            self._send(f, "POST", path, body)
