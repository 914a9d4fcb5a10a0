"""The thin ASGI layer: Stripe's HTTP surface and the `/_control/` API."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import fields
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from harness.emulator.core import Emulator, Outcome, RequestContext
from harness.emulator.delivery import MODES, DeliveryRule
from harness.emulator.errors import StripeError
from harness.emulator.faults import FAULT_KINDS, FaultRule
from harness.emulator.forms import parse_form
from harness.emulator.idempotency import SavedResponse, fingerprint
from harness.emulator.resources import API_VERSION

Handler = Callable[[Request], Awaitable[Response]]


class ConnectionDropped(Exception):
    """Raised after a response has started, so the server cuts the connection."""


class _SuppressDropped(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


RAW_SEND = "tokenproof.raw_send"


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


def _stripe_json(status: int, body: dict[str, Any], headers: dict[str, str]) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(
    emulator: Emulator, *, on_shutdown: Callable[[], Awaitable[None]] | None = None
) -> ASGIApp:
    logging.getLogger("uvicorn.error").addFilter(_SuppressDropped())
    request_seq = [0]

    def next_request_id() -> str:
        request_seq[0] += 1
        return f"req_{request_seq[0]:014d}"

    async def api(
        request: Request, op: Callable[[dict[str, Any], RequestContext], Outcome]
    ) -> Response:
        request_id = next_request_id()
        headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        log: dict[str, Any] = {
            "request_id": request_id,
            "method": request.method,
            "path": request.url.path,
            "at": emulator.clock.now(),
        }
        emulator.requests.append(log)
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer sk_test_"):
            log["status"] = 401
            message = (
                "You did not provide an API key."
                if not auth
                else "Invalid API Key provided; test mode keys start with sk_test_."
            )
            return _stripe_json(
                401, {"error": {"type": "invalid_request_error", "message": message}}, headers
            )
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        log["idempotency_key"] = key
        try:
            if request.method == "POST":
                params = parse_form(await request.body())
            else:
                params = parse_form(request.url.query.encode())
        except StripeError as exc:
            log["status"] = exc.status
            return _stripe_json(exc.status, exc.body(), headers)
        log["payment_method"] = params.get("payment_method")
        fault = emulator.match_fault(request.method, request.url.path, params)
        log["fault"] = fault.id if fault else None
        if key is not None:
            headers["Idempotency-Key"] = key
            try:
                saved = emulator.idempotency.begin(
                    key, fingerprint(request.method, request.url.path, params), emulator.clock.now()
                )
            except StripeError as exc:
                log["status"] = exc.status
                return _stripe_json(exc.status, exc.body(), headers)
            if saved is not None:
                log["status"], log["replayed"] = saved.status, True
                return _stripe_json(
                    saved.status, saved.body, {**headers, "Idempotent-Replayed": "true"}
                )
        try:
            if fault is not None and fault.kind == "latency":
                await emulator.clock.sleep(fault.latency_s)
            if fault is not None and fault.kind == "error":
                # Nothing ran: no saved response, a retry with the key runs for real.
                if key is not None:
                    emulator.idempotency.abandon(key)
                log["status"] = fault.status
                error = StripeError(
                    fault.status,
                    "rate_limit_error" if fault.status == 429 else "api_error",
                    "Too many requests" if fault.status == 429 else "An unknown error occurred",
                    code="rate_limit" if fault.status == 429 else None,
                )
                if fault.should_retry is not None:
                    headers["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
                return _stripe_json(fault.status, error.body(), headers)
            try:
                outcome = op(params, RequestContext(request_id, key))
            except StripeError as exc:
                outcome = Outcome(exc.status, exc.body())
        except BaseException:
            # Cancelled or crashed mid-request: free the key so a retry may run.
            if key is not None:
                emulator.idempotency.abandon(key)
            raise
        if key is not None:
            emulator.idempotency.finish(key, SavedResponse(outcome.status, outcome.body))
        log["status"] = outcome.status
        log["intent_id"] = _intent_id(outcome.body)
        await emulator.dispatcher.dispatch(outcome.events)
        if fault is not None and fault.kind == "commit_then_drop":
            log["dropped"] = True
            if fault.drop == "reset":
                return DroppedResponse()
            error = StripeError(500, "api_error", "An unknown error occurred")
            return _stripe_json(500, error.body(), headers)
        return _stripe_json(outcome.status, outcome.body, headers)

    async def create(request: Request) -> Response:
        return await api(request, emulator.create_intent)

    async def list_or_create(request: Request) -> Response:
        if request.method == "POST":
            return await create(request)
        return await api(request, lambda params, _ctx: emulator.list_intents(params))

    async def retrieve(request: Request) -> Response:
        ident = request.path_params["id"]
        return await api(request, lambda _params, _ctx: emulator.retrieve_intent(ident))

    async def confirm(request: Request) -> Response:
        ident = request.path_params["id"]
        return await api(request, lambda p, ctx: emulator.confirm_intent(ident, p, ctx))

    async def cancel(request: Request) -> Response:
        ident = request.path_params["id"]
        return await api(request, lambda p, ctx: emulator.cancel_intent(ident, p, ctx))

    async def not_found(request: Request, exc: Exception) -> Response:
        error = StripeError.invalid_request(
            f"Unrecognized request URL ({request.method}: {request.url.path}).", status=404
        )
        return _stripe_json(404, error.body(), {})

    async def bad_method(request: Request, exc: Exception) -> Response:
        error = StripeError.invalid_request(
            f"Unrecognized request URL ({request.method}: {request.url.path}).", status=405
        )
        return _stripe_json(405, error.body(), {})

    # -- control -----------------------------------------------------------------------

    async def control_body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ControlError(f"body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ControlError("body must be a JSON object")
        return body

    def control(handler: Callable[[Request], Awaitable[Any]]) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                return JSONResponse(await handler(request))
            except ControlError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            except StripeError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)

        return wrapped

    async def state(request: Request) -> Any:
        key = request.query_params.get("metadata_key")
        prefix = request.query_params.get("metadata_prefix")
        if (key is None) != (prefix is None):
            raise ControlError("give metadata_key and metadata_prefix together, or neither")
        return emulator.snapshot(None if key is None or prefix is None else (key, prefix))

    async def reset(request: Request) -> Any:
        await emulator.reset()
        return {"reset": True}

    async def add_endpoint(request: Request) -> Any:
        body = await control_body(request)
        url, secret = body.get("url"), body.get("secret")
        if not isinstance(url, str) or not isinstance(secret, str):
            raise ControlError("give url and secret (whsec_...) as strings")
        return emulator.add_endpoint(url, secret).to_json()

    async def delivery_rules(request: Request) -> Any:
        if request.method == "DELETE":
            emulator.dispatcher.clear_rules()
            return {"rules": []}
        rule = _build(DeliveryRule, await control_body(request), "mode", MODES)
        return emulator.dispatcher.add_rule(rule).to_json()

    async def faults(request: Request) -> Any:
        if request.method == "DELETE":
            emulator.fault_rules.clear()
            return {"rules": []}
        rule = _build(FaultRule, await control_body(request), "kind", FAULT_KINDS)
        return emulator.add_fault(rule).to_json()

    async def release(request: Request) -> Any:
        body = await control_body(request)
        released = emulator.dispatcher.release_held(body.get("event_type"), body.get("intent_id"))
        return {"released": released}

    async def customer(request: Request) -> Any:
        ident, action = request.path_params["id"], request.path_params["action"]
        actions = {
            "authenticate": emulator.authenticate,
            "fail": emulator.fail_authentication,
            "abandon": emulator.abandon,
        }
        if action not in actions:
            raise ControlError(f"unknown action {action!r}; use one of {sorted(actions)}")
        outcome = actions[action](ident)
        await emulator.dispatcher.dispatch(outcome.events)
        return outcome.body

    async def settled(request: Request) -> Any:
        return {
            "in_progress": emulator.dispatcher.in_progress,
            "held": len(emulator.dispatcher.held),
        }

    async def forge(request: Request) -> Any:
        """Send a made-up event for an intent, claiming `status`, with a bad or good signature."""
        body = await control_body(request)
        intent = emulator.intents.get(str(body.get("intent_id")))
        if intent is None:
            raise ControlError("give the intent_id of an existing PaymentIntent")
        signature = body.get("signature", "forged")
        if signature not in ("forged", "stale", "valid"):
            raise ControlError("signature must be forged, stale or valid")
        event_type = str(body.get("type", "payment_intent.succeeded"))
        obj = {**intent.to_json(), "status": body.get("status", "succeeded")}
        from harness.emulator.resources import Event

        event = Event(
            emulator.ids.new("evt"), event_type, int(emulator.clock.now()), obj, None, None
        )
        results = []
        for endpoint in emulator.dispatcher.endpoints:
            attempt = await emulator.dispatcher._attempt(
                event, endpoint, copy=0, number=1, signature=signature
            )
            results.append(attempt.to_json())
        return {"event": event.to_json(), "attempts": results}

    async def advance(request: Request) -> Any:
        body = await control_body(request)
        clock = emulator.clock
        if not hasattr(clock, "advance"):
            raise ControlError("this emulator runs on the system clock; it cannot be advanced")
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or seconds < 0:
            raise ControlError("give seconds >= 0")
        clock.advance(float(seconds))
        return {"now": clock.now()}

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    routes = [
        Route("/v1/payment_intents", list_or_create, methods=["GET", "POST"]),
        Route("/v1/payment_intents/{id}", retrieve, methods=["GET"]),
        Route("/v1/payment_intents/{id}/confirm", confirm, methods=["POST"]),
        Route("/v1/payment_intents/{id}/cancel", cancel, methods=["POST"]),
        Route("/_control/health", health, methods=["GET"]),
        Route("/_control/state", control(state), methods=["GET"]),
        Route("/_control/reset", control(reset), methods=["POST"]),
        Route("/_control/webhook_endpoints", control(add_endpoint), methods=["POST"]),
        Route("/_control/delivery_rules", control(delivery_rules), methods=["POST", "DELETE"]),
        Route("/_control/faults", control(faults), methods=["POST", "DELETE"]),
        Route("/_control/release", control(release), methods=["POST"]),
        Route("/_control/settled", control(settled), methods=["GET"]),
        Route("/_control/forge", control(forge), methods=["POST"]),
        Route("/_control/clock/advance", control(advance), methods=["POST"]),
        Route("/_control/payment_intents/{id}/{action}", control(customer), methods=["POST"]),
    ]

    async def shutdown() -> None:
        await emulator.dispatcher.cancel_all()
        if on_shutdown is not None:
            await on_shutdown()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await shutdown()

    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: bad_method},
        lifespan=lifespan,
    )

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        # Keep the server's own send: Starlette wraps it, and DroppedResponse
        # needs the original to reach the connection.
        if scope["type"] == "http":
            scope[RAW_SEND] = send
        await app(scope, receive, send)

    return outer


class ControlError(Exception):
    """A control request the emulator cannot act on; answered with 400."""


def _build(cls: Any, body: dict[str, Any], kind_field: str, kinds: tuple[str, ...]) -> Any:
    if body.get(kind_field) not in kinds:
        raise ControlError(f"{kind_field} must be one of {', '.join(kinds)}")
    allowed = {f.name for f in fields(cls)} - {"id", "matched", "fired"}
    unknown = set(body) - allowed
    if unknown:
        raise ControlError(f"unknown fields {sorted(unknown)}; allowed: {sorted(allowed)}")
    hints = get_type_hints(cls)
    for name, value in body.items():
        if name != kind_field and not _fits(hints[name], value):
            raise ControlError(f"{name}={value!r} has the wrong type or sign")
    rule = cls(**body)
    problem = rule.problem() if hasattr(rule, "problem") else None
    if problem:
        raise ControlError(problem)
    return rule


def _fits(hint: Any, value: Any) -> bool:
    """Whether a JSON value fits a rule field's annotation. Numbers are never
    negative (delays, counts, probabilities); bools are not numbers."""
    if get_origin(hint) in (Union, UnionType):
        return any(_fits(arg, value) for arg in get_args(hint))
    if get_origin(hint) is Literal:
        return value in get_args(hint)
    if get_origin(hint) is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint in (int, float):
        number = int if hint is int else int | float
        return isinstance(value, number) and not isinstance(value, bool) and value >= 0
    return bool(hint is str and isinstance(value, str))


def _intent_id(body: dict[str, Any]) -> str | None:
    if body.get("object") == "payment_intent":
        return str(body["id"])
    pi = body.get("error", {}).get("payment_intent")
    return str(pi["id"]) if isinstance(pi, dict) else None
