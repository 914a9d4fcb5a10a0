"""Stripe emulator throughput: PaymentIntent creates/s and webhook deliveries/s.

    .venv/bin/python benchmarks/emulator.py [--seconds 5] [--clients 8] [--intents 1000]

First the emulator's own CPU per create and per delivery attempt, measured in
this process with `time.process_time` (no network; what other processes on a
shared machine do barely moves it), then wall-clock rates over loopback.

The emulator runs as its own process, as the harness runs it; the clients are
httpx / the SDK on one event loop here, so the create figures are the clients'
floor as much as the emulator's ceiling. Deliveries are measured apart from
creates: every event is held while the purchases are made, then all are
released at once and the drain is timed, to an endpoint in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.provisioning.emulator import EmulatorProcess
from harness.provisioning.local import free_port
from harness.target.emulator_client import EmulatorClient
from harness.waiting import wait_until

KEY = "sk_test_bench"
BODY = {
    "amount": "999",
    "currency": "usd",
    "payment_method": "pm_card_visa",
    "confirm": "true",
    "payment_method_types[0]": "card",
}


async def raw_creates(
    url: str, clients: int, seconds: float = float("inf"), total: int | None = None
) -> int:
    """Creates from `clients` concurrent loops until `seconds` pass or `total` are made."""
    done = 0
    started = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as http:

        async def worker() -> None:
            nonlocal done, started
            while time.monotonic() < deadline and (total is None or started < total):
                started += 1
                response = await http.post("/v1/payment_intents", data=BODY)
                response.raise_for_status()
                done += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return done


async def sdk_creates(url: str, clients: int, seconds: float) -> int:
    http_client = stripe.HTTPXClient()
    client = stripe.StripeClient(KEY, base_addresses={"api": url}, http_client=http_client)
    params: Any = {
        "amount": 999,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "confirm": True,
        "payment_method_types": ["card"],
    }
    done = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await client.v1.payment_intents.create_async(params=params)
            done += 1

    await asyncio.gather(*(worker() for _ in range(clients)))
    await http_client.close_async()  # type: ignore[no-untyped-call]
    return done


def serve_sink(port: int) -> None:
    """A Starlette endpoint that accepts every webhook, in a process of its own so
    that neither the clients here nor the emulator share its interpreter."""

    async def hook(request: Request) -> Response:
        await request.body()
        return Response(status_code=200)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def delivery_rate(intents: int, clients: int) -> tuple[float, int]:
    """Hold every event while `intents` purchases are created, release them all,
    and time the drain from the emulator's own delivery log."""
    port = free_port()
    sink = multiprocessing.get_context("spawn").Process(target=serve_sink, args=(port,))
    sink.start()
    try:
        wait_until(lambda: _accepts(port), within=30, what="the webhook sink")
        with EmulatorProcess(webhook_url=f"http://127.0.0.1:{port}/hook") as emulator:
            control = emulator.control
            control.add_delivery_rule("hold")
            asyncio.run(raw_creates(emulator.url, clients, total=intents))
            started = time.monotonic()
            released = control.release()
            control.wait_settled(within=120)
            elapsed = time.monotonic() - started
            accepted = sum(1 for d in control.state()["deliveries"] if d["status"] == 200)
            if accepted != released:
                raise SystemExit(f"{released} events released but {accepted} accepted")
            return accepted / elapsed, accepted
    finally:
        sink.terminate()
        sink.join(timeout=10)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


CREATE_FORM = b"&".join(f"{k}={v}".encode() for k, v in BODY.items())


async def _asgi_create(app: Any, key: str) -> int:
    """One POST /v1/payment_intents straight into the ASGI app."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/payment_intents",
        "raw_path": b"/v1/payment_intents",
        "query_string": b"",
        "root_path": "",
        "server": ("127.0.0.1", 12111),
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"authorization", f"Bearer {KEY}".encode()),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"idempotency-key", key.encode()),
        ],
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": CREATE_FORM, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


async def cpu_costs(creates: int) -> tuple[float, float]:
    """Emulator CPU microseconds per create (through the ASGI app) and per
    webhook delivery attempt (signing and serialising; the send is a no-op)."""
    from harness.emulator.app import create_app
    from harness.emulator.core import Emulator
    from harness.emulator.delivery import SendResult

    async def sender(url: str, body: bytes, headers: dict[str, str], wait_s: float) -> SendResult:
        return SendResult(200)

    emulator = Emulator(sender=sender)
    app = create_app(emulator)
    for n in range(200):  # warm up
        assert await _asgi_create(app, f"warm-{n}") == 200
    started = time.process_time()
    for n in range(creates):
        await _asgi_create(app, f"key-{n}")
    per_create = (time.process_time() - started) / creates
    emulator.add_endpoint("http://127.0.0.1:9/hook", "whsec_bench")
    endpoint = emulator.dispatcher.endpoints[0]
    events = emulator.events.values()
    started = time.process_time()
    for event in events:
        await emulator.dispatcher.send_once(event, endpoint)
    per_delivery = (time.process_time() - started) / len(events)
    return per_create * 1e6, per_delivery * 1e6


def done_check_ms(control: EmulatorClient, reps: int = 20) -> tuple[float, float]:
    """Median ms of asking "are the requests since my mark answered?" two ways:
    copying the whole state and scanning its request log (what the model's and
    the faults suite's steps did), and the emulator's request count."""

    def median_ms(check: Callable[[], object]) -> float:
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            check()
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000

    mark = control.request_mark() // 2
    by_state = median_ms(lambda: all("status" in r for r in control.state()["requests"][mark:]))
    by_count = median_ms(lambda: control.unanswered_since(mark) == 0)
    return by_state, by_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--intents", type=int, default=1000, help="purchases whose events are held, then released"
    )
    args = parser.parse_args()
    create_us, delivery_us = asyncio.run(cpu_costs(3000))
    print(f"emulator CPU per create (confirm, pm_card_visa), in process: {create_us:6.1f} us")
    print(f"emulator CPU per webhook delivery attempt, in process:      {delivery_us:6.1f} us")
    with EmulatorProcess() as emulator:
        n = asyncio.run(raw_creates(emulator.url, args.clients, args.seconds))
        print(
            f"raw HTTP creates (confirm, pm_card_visa), {args.clients} clients: "
            f"{n / args.seconds:8.0f} /s"
        )
        by_state, by_count = done_check_ms(emulator.control)
        print(
            f"'my requests answered?' after {n} creates: whole state {by_state:7.1f} ms, "
            f"request count {by_count:5.2f} ms ({by_state / by_count:.0f}x)"
        )
        emulator.control.reset()
        n = asyncio.run(sdk_creates(emulator.url, args.clients, args.seconds))
        print(
            f"stripe SDK async creates, {args.clients} clients:            "
            f"{n / args.seconds:8.0f} /s"
        )
    rate, accepted = delivery_rate(args.intents, args.clients)
    print(f"webhook deliveries, backlog of {accepted} released at once:  {rate:8.0f} /s")


if __name__ == "__main__":
    main()
