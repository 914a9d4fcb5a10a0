"""The ASGI application: wiring only."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from reference_impl import routes
from reference_impl.auth import Unauthorized
from reference_impl.errors import ServiceError
from reference_impl.payments import Payments
from reference_impl.service import TokenService
from reference_impl.settings import Settings
from reference_impl.stream import BalanceHub

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "tokenproof reference token service", "version": "1"},
    "paths": {
        "/api/tokens/purchase": {"post": {"summary": "Buy a token package (credited by webhook)"}},
        "/api/tokens/tip": {"post": {"summary": "Tip a creator"}},
        "/api/tokens/calls/deduct": {"post": {"summary": "Pay call minutes to a creator"}},
        "/api/tokens/balance": {"get": {"summary": "The caller's balance"}},
        "/api/payments/webhook": {"post": {"summary": "Stripe events (signed)"}},
        "/api/tokens/stream": {"get": {"summary": "WebSocket of balance events"}},
        "/health": {"get": {"summary": "Liveness"}},
    },
}


def create_app(settings: Settings, service_class: type[TokenService] = TokenService) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # DB_POOL_SIZE may be 1: asyncpg refuses a min_size above max_size.
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=min(2, settings.pool_size),
            max_size=settings.pool_size,
        )
        payments = Payments(settings)
        app.state.service = service_class(pool, payments, BalanceHub(), settings)
        try:
            yield
        finally:
            await payments.close()
            await pool.close()

    async def openapi(request: Any) -> JSONResponse:
        return JSONResponse(OPENAPI)

    return Starlette(
        routes=[*routes.routes(), Route("/openapi.json", openapi, methods=["GET"])],
        lifespan=lifespan,
        exception_handlers={
            Unauthorized: routes.on_unauthorized,
            ServiceError: routes.on_service_error,
            Exception: routes.on_crash,
        },
    )
