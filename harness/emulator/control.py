"""The `/_control/` API the harness steers the emulator with (JSON in, JSON out).

Bodies are validated by pydantic against the rule dataclasses themselves
(strict: no coercion, no unknown fields, the bounds their annotations give);
a refused body is a 400 carrying pydantic's messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, TypeAdapter, ValidationError, with_config
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from harness.emulator.core import Emulator
from harness.emulator.delivery import RULE_CONFIG, DeliveryRule
from harness.emulator.errors import StripeError
from harness.emulator.faults import FaultRule
from harness.emulator.resources import Event

T = TypeVar("T")


class ControlError(Exception):
    """A control request the emulator cannot act on; answered with 400."""


@with_config(RULE_CONFIG)
@dataclass(frozen=True)
class EndpointBody:
    url: str
    secret: str


@with_config(RULE_CONFIG)
@dataclass(frozen=True)
class ReleaseBody:
    event_type: str | None = None
    intent_id: str | None = None


@with_config(RULE_CONFIG)
@dataclass(frozen=True)
class ForgeBody:
    intent_id: str
    signature: Literal["forged", "stale", "valid"] = "forged"
    type: str = "payment_intent.succeeded"
    status: str = "succeeded"


@with_config(RULE_CONFIG)
@dataclass(frozen=True)
class AdvanceBody:
    seconds: Annotated[float, Field(ge=0)]


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {
    cls: TypeAdapter(cls)
    for cls in (DeliveryRule, FaultRule, EndpointBody, ReleaseBody, ForgeBody, AdvanceBody)
}


async def parse_body(request: Request, cls: type[T]) -> T:
    raw = await request.body()
    try:
        value: T = _ADAPTERS[cls].validate_json(raw or b"{}")
    except ValidationError as exc:
        raise ControlError(_messages(exc)) from None
    return value


def _messages(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(x) for x in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def control(handler: Callable[[Request, Emulator], Awaitable[Any]]) -> Callable[..., Any]:
    """A control endpoint: the emulator from `app.state`, JSON out, 400 for a bad request."""

    async def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(await handler(request, request.app.state.emulator))
        except ControlError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except StripeError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)

    endpoint.__name__ = handler.__name__
    return endpoint


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def state(request: Request, emulator: Emulator) -> Any:
    key = request.query_params.get("metadata_key")
    prefix = request.query_params.get("metadata_prefix")
    if (key is None) != (prefix is None):
        raise ControlError("give metadata_key and metadata_prefix together, or neither")
    compact = request.query_params.get("compact", "0")
    if compact not in ("0", "1"):
        raise ControlError(f"compact is 0 or 1, not {compact!r}")
    scope = None if key is None or prefix is None else (key, prefix)
    return emulator.snapshot(scope, compact=compact == "1")


async def reset(request: Request, emulator: Emulator) -> Any:
    await emulator.reset()
    return {"reset": True}


async def add_endpoint(request: Request, emulator: Emulator) -> Any:
    body = await parse_body(request, EndpointBody)
    return emulator.add_endpoint(body.url, body.secret).to_json()


async def delivery_rules(request: Request, emulator: Emulator) -> Any:
    if request.method == "DELETE":
        emulator.dispatcher.clear_rules()
        return {"rules": []}
    rule = await parse_body(request, DeliveryRule)
    return emulator.dispatcher.add_rule(rule).to_json()


async def faults(request: Request, emulator: Emulator) -> Any:
    if request.method == "DELETE":
        emulator.fault_rules.clear()
        return {"rules": []}
    rule = await parse_body(request, FaultRule)
    return emulator.add_fault(rule).to_json()


async def release(request: Request, emulator: Emulator) -> Any:
    body = await parse_body(request, ReleaseBody)
    return {"released": emulator.dispatcher.release_held(body.event_type, body.intent_id)}


async def customer(request: Request, emulator: Emulator) -> Any:
    """The customer's side of 3-D Secure: authenticate, fail or abandon."""
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


async def requests(request: Request, emulator: Emulator) -> Any:
    """How many API requests the emulator has had (`total`), and how many of those
    from number `since` on (0-based) are still unanswered: a caller marks a point
    (the total) and later asks whether its own requests are done, without copying
    the whole log."""
    since = request.query_params.get("since", "0")
    if not since.isdecimal():
        raise ControlError(f"since is a request number (0 or more), not {since!r}")
    log = emulator.requests
    unanswered = sum(1 for r in log[int(since) :] if "status" not in r)
    return {"total": len(log), "unanswered": unanswered}


async def settled(request: Request, emulator: Emulator) -> Any:
    return {"in_progress": emulator.dispatcher.in_progress, "held": len(emulator.dispatcher.held)}


async def forge(request: Request, emulator: Emulator) -> Any:
    """Send a made-up event for an intent, claiming `status`, with a bad or good signature."""
    body = await parse_body(request, ForgeBody)
    intent = emulator.intents.get(body.intent_id)
    if intent is None:
        raise ControlError("give the intent_id of an existing PaymentIntent")
    obj = {**intent.to_json(), "status": body.status}
    event = Event(
        emulator.ids.new("evt"),
        body.type,
        int(emulator.clock.now()),
        obj,
        None,
        None,
        emulator.api_version,
    )
    attempts = [
        await emulator.dispatcher.send_once(event, endpoint, signature=body.signature)
        for endpoint in emulator.dispatcher.endpoints
    ]
    return {"event": event.to_json(), "attempts": [a.to_json() for a in attempts]}


async def advance(request: Request, emulator: Emulator) -> Any:
    body = await parse_body(request, AdvanceBody)
    clock = emulator.clock
    if not hasattr(clock, "advance"):
        raise ControlError("this emulator runs on the system clock; it cannot be advanced")
    clock.advance(body.seconds)
    return {"now": clock.now()}
