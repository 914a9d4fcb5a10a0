"""Locust load for tokenproof: fans purchase (card and 3-D Secure), tip, pay call
minutes, read their balance and sometimes retry with the same key.

`tokenproof load` starts the master with this file; it creates the users,
writes the run's configuration (TOKENPROOF_LOAD names the file) and checks the
ops as they arrive and once settled. Workers, here or on other machines
(`tokenproof load-worker`, or `locust --worker -f "$(tokenproof locustfile)"`),
get that configuration from the master and send their ops back to it over
Locust's messages (`harness.load.channel`). This file only drives HTTP and
records ops: it imports nothing that runs asyncio, because Locust patches the
standard library with gevent.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from locust import FastHttpUser, between, events, task

from harness.contract import purchase_body, transfer_body
from harness.dialect.model import CONTRACT, Dialect
from harness.dialect.wire import auth_header, contract_answer, sign_token, wire_request
from harness.load.channel import (
    CONFIG_OPTION,
    FLUSH,
    Collector,
    Recorder,
    is_worker,
    run_config,
)

_RECORDER: Recorder | None = None
_COLLECTOR: Collector | None = None


@events.init.add_listener  # type: ignore[untyped-decorator]
def _init(environment: Any, **kwargs: Any) -> None:
    global _COLLECTOR
    if is_worker(environment):
        environment.runner.register_message(FLUSH, _flush_requested, concurrent=True)
        return
    path = os.environ.get("TOKENPROOF_LOAD")
    if not path:
        raise RuntimeError(
            "TOKENPROOF_LOAD is unset: the master is started by `tokenproof load`, "
            "which writes the run's configuration; start workers with "
            "`tokenproof load-worker --master-host ADDR`"
        )
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    # Locust sends custom options to every worker in its spawn message.
    vars(environment.parsed_options)[CONFIG_OPTION] = config
    _COLLECTOR = Collector(environment, config)


def _recorder(environment: Any) -> Recorder:
    global _RECORDER
    if _RECORDER is None:
        _RECORDER = Recorder(environment, float(run_config(environment)["started"]))
    return _RECORDER


def _flush_requested(environment: Any, msg: Any, **kwargs: Any) -> None:
    """The master is finishing: stop the users, send the last ops and `done`."""
    environment.runner.stop()  # fires test_stop, which sends them
    if _RECORDER is not None:
        _RECORDER.done()


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _stop(environment: Any, **kwargs: Any) -> None:
    if _RECORDER is not None:
        _RECORDER.done()
    if _COLLECTOR is not None:
        # Headless, a stop ends the run; in the web UI another test may follow.
        headless = bool(getattr(environment.parsed_options, "headless", True))
        _COLLECTOR.finish(close=headless)


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _quitting(environment: Any, **kwargs: Any) -> None:
    # On SIGTERM Locust fires `quitting` before it stops the runner: stop it
    # here, so the last ops are sent and collected before the file closes
    # (a runner that never started fires no test_stop: close the file anyway).
    environment.runner.stop()
    if _COLLECTOR is not None:
        _COLLECTOR.finish()


class Fan(FastHttpUser):
    wait_time = between(0.0, 0.05)
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        cfg = run_config(self.environment)
        self.recorder = _recorder(self.environment)
        # The run's seed (in load.json), then a stream of its own per worker and user.
        self.rng = random.Random(f"{cfg['seed']}-{self.recorder.prefix}-{id(self)}")
        self.emulator_url = cfg["emulator_url"]
        self.me = self.rng.choice(cfg["fans"])
        self.creators = cfg["creators"]
        self.dialect = Dialect.from_json(cfg["dialect"]) if "dialect" in cfg else CONTRACT
        token = sign_token(self.dialect, self.me, cfg["jwt_secret"], ttl_s=86_400)
        self.auth = dict([auth_header(self.dialect, token)])
        self.name_ = f"{os.getpid()}-{id(self)}"
        self.last_keyed: tuple[str, dict[str, Any]] | None = None

    def _send(self, f: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        wire = wire_request(self.dialect, f, body)
        invoke = self.recorder.invoke(self.name_, f, self.me, body or {})
        headers = {**self.auth, **wire.headers}
        with self.client.request(
            wire.method, wire.path, json=wire.json, headers=headers, name=f, catch_response=True
        ) as response:
            status = response.status_code or None
            try:
                parsed = response.json()
            except Exception:
                parsed = response.text
            if status is not None:
                status, parsed = contract_answer(self.dialect, f, status, parsed)
            error = None if status else str(response.error)
            self.recorder.complete(invoke, status, parsed, error)
            if status is not None and status < 500:
                response.success()  # 4xx is the contract's refusal, not a load failure
            else:
                response.failure(f"{f} answered {status}")
        return status or 0, parsed

    def _key(self) -> str | None:
        return f"k-{self.rng.getrandbits(48):x}" if self.rng.random() < 0.5 else None

    @task(5)
    def tip(self) -> None:
        self._transfer("tip", self.rng.randint(1, 5), "load")

    @task(3)
    def deduct(self) -> None:
        self._transfer("deduct", self.rng.randint(1, 3), f"call-{self.rng.randint(1, 50)}")

    def _transfer(self, f: str, amount: int, context: str) -> None:
        creator = self.rng.choice(self.creators)
        key = self._key()
        body = transfer_body(f, creator, amount, context=context, key=key)
        if key:
            self.last_keyed = (f, body)
        self._send(f, body)

    @task(3)
    def balance(self) -> None:
        self._send("balance", None)

    @task(1)
    def purchase_card(self) -> None:
        method = "pm_card_chargeDeclined" if self.rng.random() < 0.1 else "pm_card_visa"
        key = f"p-{self.rng.getrandbits(48):x}"
        body = purchase_body(self.rng.choice([100, 500]), method, key)
        self.last_keyed = ("purchase", body)
        self._send("purchase", body)

    @task(1)
    def purchase_three_ds(self) -> None:
        status, answer = self._send("purchase", purchase_body(100, "pm_card_threeDSecure2Required"))
        if status == 200 and isinstance(answer, dict):
            intent = answer["paymentIntent"]["id"]
            action = "abandon" if self.rng.random() < 0.25 else "authenticate"
            # The customer's side of 3-D Secure, at the emulator.
            self.client.post(
                f"{self.emulator_url}/_control/payment_intents/{intent}/{action}",
                name="3ds-customer",
            )

    @task(1)
    def retry_last(self) -> None:
        if self.last_keyed is not None:
            f, body = self.last_keyed
            self._send(f, body)
