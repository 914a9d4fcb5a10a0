"""Test helpers: a real webhook endpoint that verifies signatures with the SDK."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import stripe

from harness.emulator import EmulatorThread
from harness.target.emulator_client import EmulatorClient
from harness.waiting import wait_until

SECRET = "whsec_test_sink_secret"


@dataclass(frozen=True)
class Received:
    event_id: str
    type: str
    verified: bool
    error: str | None
    status: int
    body: dict[str, Any]


class WebhookSink:
    """An HTTP endpoint on loopback. `respond(n)` gives the status for the n-th request."""

    def __init__(
        self,
        secret: str = SECRET,
        respond: Callable[[int, Received], int] | None = None,
        hold: threading.Event | None = None,
    ) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._respond = respond or (lambda n, r: 200 if r.verified else 400)
        self._hold = hold
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = self.rfile.read(length)
                header = self.headers.get("Stripe-Signature")
                try:
                    stripe.Webhook.construct_event(payload, header, sink.secret)
                    verified, error = True, None
                except stripe.SignatureVerificationError as exc:
                    verified, error = False, str(exc)
                body = json.loads(payload)
                if sink._hold is not None:
                    sink._hold.wait(10)
                with sink._lock:
                    probe = Received(body["id"], body["type"], verified, error, 0, body)
                    status = sink._respond(len(sink.received), probe)
                    sink.received.append(
                        Received(body["id"], body["type"], verified, error, status, body)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhook"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def types(self) -> list[str]:
        with self._lock:
            return [r.type for r in self.received]

    def wait_for(self, condition: Callable[[list[Received]], bool], what: str) -> list[Received]:
        def check() -> bool:
            with self._lock:
                return condition(list(self.received))

        wait_until(check, within=15, what=what)
        with self._lock:
            return list(self.received)


class EmulatorWorld:
    """An emulator with a webhook sink, its control client, and the official
    stripe-python client pointed at it (with `key`)."""

    def __init__(self, emulator: EmulatorThread, sink: WebhookSink, key: str) -> None:
        self.emulator = emulator
        self.sink = sink
        self.control = EmulatorClient(emulator.url)
        self.client = stripe.StripeClient(
            key, base_addresses={"api": emulator.url}, max_network_retries=2
        )


async def fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    """One query on a connection of its own."""
    conn = await asyncpg.connect(dsn)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql)
        return rows
    finally:
        await conn.close()
