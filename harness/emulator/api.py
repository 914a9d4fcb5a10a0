"""Stripe's HTTP surface: each request goes through auth, parameters, idempotency,
faults and the operation, then its events are dispatched and its answer saved.

The emulator and these settings live on `app.state`; the endpoints are the
module-level functions at the bottom, one per path.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.emulator.core import Emulator
from harness.emulator.dropping import DroppedResponse
from harness.emulator.errors import StripeError
from harness.emulator.faults import FaultRule
from harness.emulator.forms import parse_form
from harness.emulator.idempotency import SavedResponse, fingerprint
from harness.emulator.listing import check_paths, expand_paths
from harness.emulator.resources import Outcome, RequestContext

TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?(; *[a-z_]+=\w+)*$")  # betas: "; name=v1"
NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)

# (emulator, path parameters, request parameters, context) -> outcome
Run = Callable[[Emulator, dict[str, str], dict[str, Any], RequestContext], Outcome]


@dataclass(frozen=True)
class Operation:
    run: Run
    kind: str  # what it answers with, for `expand` ("payment_intent", "list:charge", ...)


@dataclass
class ApiSettings:
    """How the API layer behaves; `app.state.api`."""

    api_key: str | None = None  # None: any test key (sk_test_ / rk_test_)
    latency_s: float = 0.0  # Stripe's processing time, modelled; the key is held throughout
    request_seq: int = 0

    def next_request_id(self) -> str:
        self.request_seq += 1
        return f"req_{self.request_seq:014d}"


@dataclass
class Call:
    """One API request on its way through the steps."""

    request: Request
    emulator: Emulator
    log: dict[str, Any]
    headers: dict[str, str]
    version: str
    params: dict[str, Any] = field(default_factory=dict)
    key: str | None = None

    def answer(self, status: int, body: dict[str, Any], **extra: str) -> Response:
        self.log["status"] = status
        headers = {**self.headers, **extra} if extra else self.headers
        return Response(orjson.dumps(body), status, headers, media_type="application/json")

    def error(self, exc: StripeError, **extra: str) -> Response:
        # Logged so a harness can know Stripe's words when a service passes them on.
        self.log["error_message"] = exc.message
        return self.answer(exc.status, exc.body(), **extra)


async def handle(request: Request, operation: Operation) -> Response:
    emulator: Emulator = request.app.state.emulator
    settings: ApiSettings = request.app.state.api
    call = _begin(request, emulator, settings)
    try:
        _authenticate(request, settings.api_key)
        _check_version(call)
        call.params = await _read_params(request)
        paths = expand_paths(call.params) if "expand" in call.params else []
        check_paths(operation.kind, paths)
    except StripeError as exc:
        extra = {"WWW-Authenticate": 'Basic realm="Stripe"'} if exc.status == 401 else {}
        return call.error(exc, **extra)
    call.log["payment_method"] = call.params.get("payment_method")
    fault = emulator.match_fault(request.method, call.log["path"], call.params)
    call.log["fault"] = fault.id if fault else None
    claimed = _claim_key(call)
    if claimed is not None:
        return claimed
    try:
        result = await _execute(call, operation, fault, settings.latency_s, paths)
    except BaseException:
        # Cancelled or crashed mid-request: free the key so a retry may run.
        _release_key(call)
        raise
    return result


def _begin(request: Request, emulator: Emulator, settings: ApiSettings) -> Call:
    request_id = settings.next_request_id()
    version = request.headers.get("stripe-version") or emulator.api_version
    log: dict[str, Any] = {
        "request_id": request_id,
        "method": request.method,
        "path": request.scope["path"],  # not request.url: it builds a whole URL
        "at": emulator.clock.now(),
    }
    emulator.requests.append(log)
    headers = {"Request-Id": request_id, "Stripe-Version": version}
    return Call(request, emulator, log, headers, version)


def _authenticate(request: Request, expected: str | None) -> None:
    """Bearer or Basic (the key as user name), as Stripe accepts them."""
    header = request.headers.get("authorization", "")
    if not header.strip():
        raise StripeError(401, "invalid_request_error", NO_KEY)
    scheme, _, credential = header.partition(" ")
    key = credential.strip()
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(key, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    elif scheme.lower() != "bearer":
        key = header.strip()
    valid = key == expected if expected is not None else key.startswith(TEST_KEY_PREFIXES)
    if not valid:
        shown = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else key
        raise StripeError(401, "invalid_request_error", f"Invalid API Key provided: {shown}")


def _check_version(call: Call) -> None:
    if not _VERSION.match(call.version):
        call.headers["Stripe-Version"] = call.emulator.api_version
        raise StripeError.invalid_param(f"Invalid Stripe API version: {call.version}")


async def _read_params(request: Request) -> dict[str, Any]:
    if request.method == "POST":
        return parse_form(await request.body())
    return parse_form(request.scope["query_string"])


def _claim_key(call: Call) -> Response | None:
    """Take the request's idempotency key: None to run, or the answer instead
    (a replay, a 400 for other parameters, a 409 while the key is in use)."""
    if call.request.method != "POST":
        return None
    call.key = call.request.headers.get("idempotency-key")
    call.log["idempotency_key"] = call.key
    if call.key is None:
        return None
    call.headers["Idempotency-Key"] = call.key
    emulator = call.emulator
    print_ = fingerprint(call.request.method, call.log["path"], call.params)
    try:
        saved = emulator.idempotency.begin(call.key, print_, emulator.clock.now())
    except StripeError as exc:
        call.key = None  # not ours: the key stays with its first request
        return call.error(exc)
    if saved is None:
        return None
    call.log["replayed"] = True
    extra = {"Idempotent-Replayed": "true"}
    if saved.request_id:
        extra["Original-Request"] = saved.request_id
    return call.answer(saved.status, saved.body, **extra)


def _release_key(call: Call) -> None:
    if call.key is not None:
        call.emulator.idempotency.abandon(call.key)


async def _execute(
    call: Call, operation: Operation, fault: FaultRule | None, latency_s: float, paths: list[str]
) -> Response:
    emulator = call.emulator
    if fault is not None and fault.kind == "latency":
        await emulator.clock.sleep(fault.latency_s)
    if fault is not None and fault.kind == "error":
        _release_key(call)  # nothing ran: nothing saved, a retry with the key runs for real
        return _error_fault(call, fault)
    if latency_s > 0:
        # Processing time passes in real time, whatever the emulator's clock.
        await asyncio.sleep(latency_s)
    ctx = RequestContext(call.log["request_id"], call.key, call.version)
    saved = True
    try:
        outcome = operation.run(emulator, call.request.path_params, call.params, ctx)
        if outcome.status == 200 and paths:
            outcome.body = emulator.expand(outcome.body, paths)
    except StripeError as exc:
        outcome, saved = Outcome(exc.status, exc.body()), exc.saved
    call.log["intent_id"] = _intent_id(outcome.body)
    # The before_response deliveries are answered while the key is still held.
    await emulator.dispatcher.dispatch(outcome.events)
    if call.key is not None:
        if saved:
            emulator.idempotency.finish(
                call.key, SavedResponse(outcome.status, outcome.body, call.log["request_id"])
            )
        else:
            _release_key(call)  # refused by validation: Stripe saves nothing
    if fault is not None and fault.kind == "commit_then_drop":
        call.log["dropped"] = True
        if fault.drop == "reset":
            call.log["status"] = outcome.status
            return DroppedResponse()
        return call.error(StripeError(500, "api_error", "An unknown error occurred"))
    return call.answer(outcome.status, outcome.body)


def _error_fault(call: Call, fault: FaultRule) -> Response:
    limited = fault.status == 429
    error = StripeError(
        fault.status,
        "rate_limit_error" if limited else "api_error",
        "Too many requests" if limited else "An unknown error occurred",
        code="rate_limit" if limited else None,
    )
    extra = {}
    if fault.should_retry is not None:
        extra["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
    return call.error(error, **extra)


def _intent_id(body: dict[str, Any]) -> str | None:
    kind = body.get("object")
    if kind == "payment_intent":
        return str(body["id"])
    if kind in ("charge", "refund") and body.get("payment_intent"):
        pi = body["payment_intent"]
        return str(pi["id"] if isinstance(pi, dict) else pi)
    pi = body.get("error", {}).get("payment_intent")
    return str(pi["id"]) if isinstance(pi, dict) else None


# -- the operations and endpoints ------------------------------------------------------------

CREATE_INTENT = Operation(lambda em, _, q, ctx: em.create_intent(q, ctx), "payment_intent")
LIST_INTENTS = Operation(lambda em, _, q, ctx: em.list_intents(q), "list:payment_intent")
RETRIEVE_INTENT = Operation(
    lambda em, path, q, ctx: em.retrieve_intent(path["id"], q), "payment_intent"
)
UPDATE_INTENT = Operation(
    lambda em, path, q, ctx: em.update_intent(path["id"], q, ctx), "payment_intent"
)
CONFIRM_INTENT = Operation(
    lambda em, path, q, ctx: em.confirm_intent(path["id"], q, ctx), "payment_intent"
)
CAPTURE_INTENT = Operation(
    lambda em, path, q, ctx: em.capture_intent(path["id"], q, ctx), "payment_intent"
)
CANCEL_INTENT = Operation(
    lambda em, path, q, ctx: em.cancel_intent(path["id"], q, ctx), "payment_intent"
)
LIST_CHARGES = Operation(lambda em, _, q, ctx: em.list_charges(q), "list:charge")
RETRIEVE_CHARGE = Operation(lambda em, path, q, ctx: em.retrieve_charge(path["id"], q), "charge")
CREATE_REFUND = Operation(lambda em, _, q, ctx: em.create_refund(q, ctx), "refund")
LIST_REFUNDS = Operation(lambda em, _, q, ctx: em.list_refunds(q), "list:refund")
RETRIEVE_REFUND = Operation(lambda em, path, q, ctx: em.retrieve_refund(path["id"], q), "refund")
LIST_EVENTS = Operation(lambda em, _, q, ctx: em.list_events(q), "list:event")
RETRIEVE_EVENT = Operation(lambda em, path, q, ctx: em.retrieve_event(path["id"], q), "event")


def endpoint(path: str, *, get: Operation | None = None, post: Operation | None = None) -> Route:
    """A Stripe API route whose GET (and so HEAD) and POST each run their operation."""
    methods = [m for m, op in (("GET", get), ("POST", post)) if op is not None]

    async def run(request: Request) -> Response:
        operation = post if request.method == "POST" else get
        assert operation is not None  # the route accepts only `methods`
        return await handle(request, operation)

    return Route(path, run, methods=methods)


ROUTES = [
    endpoint("/v1/payment_intents", get=LIST_INTENTS, post=CREATE_INTENT),
    endpoint("/v1/payment_intents/{id}", get=RETRIEVE_INTENT, post=UPDATE_INTENT),
    endpoint("/v1/payment_intents/{id}/confirm", post=CONFIRM_INTENT),
    endpoint("/v1/payment_intents/{id}/capture", post=CAPTURE_INTENT),
    endpoint("/v1/payment_intents/{id}/cancel", post=CANCEL_INTENT),
    endpoint("/v1/charges", get=LIST_CHARGES),
    endpoint("/v1/charges/{id}", get=RETRIEVE_CHARGE),
    endpoint("/v1/refunds", get=LIST_REFUNDS, post=CREATE_REFUND),
    endpoint("/v1/refunds/{id}", get=RETRIEVE_REFUND),
    endpoint("/v1/events", get=LIST_EVENTS),
    endpoint("/v1/events/{id}", get=RETRIEVE_EVENT),
]


async def not_found(request: Request, exc: Exception) -> Response:
    status = 405 if getattr(exc, "status_code", 404) == 405 else 404
    error = StripeError.invalid_request(
        f"Unrecognized request URL ({request.method}: {request.url.path}).", status=status
    )
    return JSONResponse(error.body(), status_code=status)
