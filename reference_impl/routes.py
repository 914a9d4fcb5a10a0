"""HTTP: parse, call the service, answer. No SQL here, and no internal text in answers."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from reference_impl.auth import Unauthorized, user_from_bearer, user_from_token
from reference_impl.errors import InvalidInput, ServiceError
from reference_impl.service import Reply, TokenService, Transfer

log = logging.getLogger("reference_impl")
MAX_BODY_BYTES = 64 * 1024
MAX_TEXT = 200


def _service(request: Request | WebSocket) -> TokenService:
    service: TokenService = request.app.state.service
    return service


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput("body too large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("body must be a JSON object") from exc
    if not isinstance(data, dict):
        raise InvalidInput("body must be a JSON object")
    return data


def _text(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise InvalidInput(f"{name} must be a non-empty string of at most {MAX_TEXT} characters")
    return value


def _tokens(request: Request, data: dict[str, Any], kind: str) -> int:
    return _service(request).parse_amount(data.get("tokenAmount"), kind)


def _user(request: Request) -> str:
    return _service(request).authenticate(request.headers.get("authorization"))


def _reply(reply: Reply) -> JSONResponse:
    return JSONResponse(reply.body, status_code=reply.status)


async def purchase(request: Request) -> Response:
    user = _user(request)
    data = await _json_object(request)
    tokens = _tokens(request, data, "purchase")
    method = _text(data, "paymentMethodId")
    assert method is not None
    key = _text(data, "clientIdempotencyKey", required=False)
    return _reply(await _service(request).purchase(user, tokens, method, key))


async def tip(request: Request) -> Response:
    return await _transfer(request, "tip", channel_field="channel")


async def deduct(request: Request) -> Response:
    return await _transfer(request, "call", channel_field="callId")


async def _transfer(request: Request, kind: str, *, channel_field: str) -> Response:
    """A tip or a call minute: the same transfer, told apart by its kind and
    the field that names where it happened."""
    user = _user(request)
    data = await _json_object(request)
    transfer = Transfer(
        kind=kind,
        sender=user,
        creator=str(_text(data, "creatorId")),
        tokens=_tokens(request, data, kind),
        channel=str(_text(data, channel_field)),
        client_key=_text(data, "clientIdempotencyKey", required=False),
    )
    return _reply(await _service(request).transfer(transfer))


async def balance(request: Request) -> Response:
    user = _user(request)
    current = await _service(request).balance(user)
    return JSONResponse({"balance": current.balance, "version": current.version})


async def webhook(request: Request) -> Response:
    payload = await request.body()
    if len(payload) > 10 * MAX_BODY_BYTES:
        raise InvalidInput("body too large")
    await _service(request).handle_webhook(payload, request.headers.get("stripe-signature"))
    return JSONResponse({"received": True})


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def stream(websocket: WebSocket) -> None:
    """Balance events for the caller; token in the header or `?token=` (browsers)."""
    service = _service(websocket)
    try:
        header = websocket.headers.get("authorization")
        token = websocket.query_params.get("token")
        secret = service.settings.jwt_secret
        user = user_from_token(token, secret) if token else user_from_bearer(header, secret)
    except Unauthorized:
        await websocket.close(code=4401)
        return
    await websocket.accept()
    queue = service.hub.subscribe(user)
    try:
        current = await service.balance(user)
        await websocket.send_json(
            {"type": "balance", "balance": current.balance, "version": current.version}
        )
        receiver = asyncio.ensure_future(websocket.receive())
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                message = receiver.result()
                if message["type"] == "websocket.disconnect":
                    return
                receiver = asyncio.ensure_future(websocket.receive())
                continue
            await websocket.send_json(getter.result().to_json())
    except (WebSocketDisconnect, ServiceError):
        return
    finally:
        service.hub.unsubscribe(user, queue)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/tokens/purchase", purchase, methods=["POST"]),
        Route("/api/tokens/tip", tip, methods=["POST"]),
        Route("/api/tokens/calls/deduct", deduct, methods=["POST"]),
        Route("/api/tokens/balance", balance, methods=["GET"]),
        Route("/api/payments/webhook", webhook, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        WebSocketRoute("/api/tokens/stream", stream),
    ]


async def on_unauthorized(request: Request, exc: Exception) -> Response:
    return _error(401, "unauthorized")


async def on_service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return _error(exc.status, exc.message, **exc.details)


async def on_crash(request: Request, exc: Exception) -> Response:
    # Details go to the log only: a response never carries internal text.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error(500, "internal error")
