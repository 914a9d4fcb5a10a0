"""Stripe emulator throughput: PaymentIntent creates/s and webhook deliveries/s.

    .venv/bin/python benchmarks/emulator.py [--seconds 5] [--clients 8]

The emulator runs as its own process, as the harness runs it; the clients are
httpx / the SDK on one event loop here, so the figures are the clients' floor
as much as the emulator's ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.provisioning.emulator import EmulatorProcess

KEY = "sk_test_bench"
BODY = {"amount": "999", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}


async def raw_creates(url: str, clients: int, seconds: float) -> int:
    done = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as http:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                response = await http.post("/v1/payment_intents", data=BODY)
                response.raise_for_status()
                done += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return done


async def sdk_creates(url: str, clients: int, seconds: float) -> int:
    http_client = stripe.HTTPXClient()
    client = stripe.StripeClient(KEY, base_addresses={"api": url}, http_client=http_client)
    params: Any = {k: v for k, v in BODY.items()}
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


def run_sink(port_holder: list[int], counter: list[int]) -> uvicorn.Server:
    async def hook(request: Request) -> Response:
        await request.body()
        counter[0] += 1
        return Response(status_code=200)

    config = uvicorn.Config(
        Starlette(routes=[Route("/hook", hook, methods=["POST"])]),
        host="127.0.0.1",
        port=0,
        log_level="warning",
    )
    return uvicorn.Server(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with EmulatorProcess() as emulator:
        n = asyncio.run(raw_creates(emulator.url, args.clients, args.seconds))
        print(
            f"raw HTTP creates (confirm, pm_card_visa), {args.clients} clients: "
            f"{n / args.seconds:8.0f} /s"
        )
        emulator.control.reset()
        n = asyncio.run(sdk_creates(emulator.url, args.clients, args.seconds))
        print(
            f"stripe SDK async creates, {args.clients} clients:            "
            f"{n / args.seconds:8.0f} /s"
        )
    # Deliveries: every create emits three events to one endpoint.
    import threading

    counter = [0]
    server = run_sink([], counter)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    with EmulatorProcess(webhook_url=f"http://127.0.0.1:{port}/hook") as emulator:
        control = emulator.control
        started = time.monotonic()
        asyncio.run(raw_creates(emulator.url, args.clients, args.seconds))
        control.wait_settled(within=600)
        elapsed = time.monotonic() - started
        attempts = len(control.state()["deliveries"])
        print(
            f"webhook deliveries (accepted by a Starlette sink):        "
            f"{counter[0] / elapsed:8.0f} /s ({attempts} attempts)"
        )
    server.should_exit = True
    thread.join(timeout=10)


if __name__ == "__main__":
    main()
