"""The webhook sender: POSTs signed events to the endpoints over real HTTP.

aiohttp, not httpx: on the same machine and loop, httpx's async client sent
about 100 webhooks/s to a trivial endpoint, aiohttp over 1,000/s
(`benchmarks/emulator.py` measures the emulator's drain rate), and the
emulator must never be what limits a load run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp

from harness.emulator.delivery import Sender, SendResult

# Connections open at once; further deliveries queue in the connector.
MAX_DELIVERIES_IN_FLIGHT = 64


def aiohttp_sender() -> tuple[Sender, Callable[[], Awaitable[None]]]:
    """A sender and the coroutine that closes it. The session opens on first use,
    inside the server's event loop (aiohttp binds a session to its loop)."""
    session: list[aiohttp.ClientSession] = []

    def current() -> aiohttp.ClientSession:
        if not session:
            connector = aiohttp.TCPConnector(limit=MAX_DELIVERIES_IN_FLIGHT)
            session.append(aiohttp.ClientSession(connector=connector))
        return session[0]

    async def send(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> SendResult:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with current().post(url, data=body, headers=headers, timeout=timeout) as reply:
                await reply.read()  # hands the connection back for reuse
                return SendResult(reply.status)
        except TimeoutError:
            return SendResult(None, "timeout")
        except aiohttp.ClientError as exc:
            return SendResult(None, f"{exc.__class__.__name__}: {exc}")

    async def close() -> None:
        if session:
            await session[0].close()
            session.clear()

    return send, close
