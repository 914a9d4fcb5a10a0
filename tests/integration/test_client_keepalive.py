"""The client never writes a request onto a keep-alive connection the server may
be closing: a server's idle timeout racing a reused connection loses requests
without an answer, which tokenproof would record as the service's fault."""

from __future__ import annotations

import asyncio
import time

from harness.target.client import KEEPALIVE_EXPIRY_S, TargetClient

# The server's keep-alive timeout: above the client's expiry, as Node's 5 s and
# gunicorn's 2 s are.
SERVER_IDLE_TIMEOUT_S = KEEPALIVE_EXPIRY_S + 0.2
GAP_S = KEEPALIVE_EXPIRY_S + 0.4  # idle time between the two requests


async def _serve_closing_idle_connections(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dropped: list[str]
) -> None:
    """HTTP/1.1 with keep-alive. A request that arrives on a connection idle for
    longer than SERVER_IDLE_TIMEOUT_S is dropped unanswered: the server closed
    it just as the client wrote, the race made deterministic."""
    last = time.monotonic()
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            if time.monotonic() - last > SERVER_IDLE_TIMEOUT_S:
                dropped.append(head.split(b"\r\n", 1)[0].decode())
                return
            body = b'{"balance": 7, "totalEarned": 0}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Connection: keep-alive\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
            last = time.monotonic()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the client closed the connection: the usual end
    finally:
        writer.close()


async def test_a_connection_idle_past_the_servers_timeout_is_not_reused() -> None:
    dropped: list[str] = []
    server = await asyncio.start_server(
        lambda r, w: _serve_closing_idle_connections(r, w, dropped), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        async with TargetClient(f"http://127.0.0.1:{port}", "s" * 32) as client:
            first = await client.send("balance", "fan")
            # The subject of the test is the idle gap itself, not a wait for a condition.
            await asyncio.sleep(GAP_S)
            second = await client.send("balance", "fan")
    finally:
        server.close()
        await server.wait_closed()
    assert dropped == []
    assert (first.status, second.status) == (200, 200)
