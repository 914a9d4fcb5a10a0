"""A response that never arrives: the connection is cut after the work is done."""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

# Where the outer ASGI wrapper keeps the server's own `send` (Starlette wraps it).
RAW_SEND = "tokenproof.raw_send"


class ConnectionDropped(Exception):
    """Raised after a response has started, so the server cuts the connection."""


class SuppressDropped(logging.Filter):
    """Keeps uvicorn's error log free of the drops the emulator makes on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


class DroppedResponse(Response):
    """Cuts the connection without an answer: the client sees a reset.

    Aborts the server's transport when it can reach it (uvicorn's send is a
    bound method of the request cycle, which holds it); otherwise announces a
    body it never sends and fails, which ends the connection just as surely.
    """

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_send = scope.get(RAW_SEND)
        transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"4096"), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"id": ', "more_body": True})
        raise ConnectionDropped
