"""The ASGI application: routes to the Stripe API (`api.py`) and the `/_control/`
API (`control.py`), with the emulator and the API settings on `app.state`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from harness.emulator import api, control
from harness.emulator.api import ApiSettings
from harness.emulator.control import control as ctl
from harness.emulator.core import Emulator
from harness.emulator.dropping import RAW_SEND, SuppressDropped

ROUTES = [
    *api.ROUTES,
    Route("/_control/health", control.health, methods=["GET"]),
    Route("/_control/state", ctl(control.state), methods=["GET"]),
    Route("/_control/reset", ctl(control.reset), methods=["POST"]),
    Route("/_control/webhook_endpoints", ctl(control.add_endpoint), methods=["POST"]),
    Route("/_control/delivery_rules", ctl(control.delivery_rules), methods=["POST", "DELETE"]),
    Route("/_control/faults", ctl(control.faults), methods=["POST", "DELETE"]),
    Route("/_control/release", ctl(control.release), methods=["POST"]),
    Route("/_control/settled", ctl(control.settled), methods=["GET"]),
    Route("/_control/requests", ctl(control.requests), methods=["GET"]),
    Route("/_control/forge", ctl(control.forge), methods=["POST"]),
    Route("/_control/clock/advance", ctl(control.advance), methods=["POST"]),
    Route("/_control/payment_intents/{id}/{action}", ctl(control.customer), methods=["POST"]),
]


def create_app(
    emulator: Emulator,
    *,
    settings: ApiSettings | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> ASGIApp:
    logging.getLogger("uvicorn.error").addFilter(SuppressDropped())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await emulator.dispatcher.cancel_all()
        if on_shutdown is not None:
            await on_shutdown()

    app = Starlette(
        routes=ROUTES,
        exception_handlers={404: api.not_found, 405: api.not_found},
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    app.state.api = settings or ApiSettings()

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        # Keep the server's own send: Starlette wraps it, and DroppedResponse
        # needs the original to reach the connection.
        if scope["type"] == "http":
            scope[RAW_SEND] = send
        await app(scope, receive, send)

    return outer
