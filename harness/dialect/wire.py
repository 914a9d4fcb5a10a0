"""The contract's requests and answers in a dialect's words, both ways. Pure:
the senders (scenarios, the model, Locust) call these at the edge, and
everything behind them (ops, checkers, the model) speaks the contract."""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import jwt

from harness.dialect.model import ANSWER_FIELDS, KEY_FIELD, OUTCOMES, Dialect

_WHOLE = re.compile(r"^\{([A-Za-z]+)\}$")
_PARAM = re.compile(r"\{([A-Za-z]+)\}")
MISSING_PATH_VALUE = "-"  # a path parameter the request does not carry (bad-input probes)
_ABSENT = object()


@dataclass(frozen=True)
class WireRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    has_json: bool = False  # False: no body (a GET), or raw content given elsewhere


def wire_request(dialect: Dialect, route: str, body: Any = None) -> WireRequest:
    """The contract request `body` for `route`, as the service expects it. A body
    that is not an object (a bad-input probe) goes to the route's path as it is."""
    where = dialect.route(route)
    fields = body if isinstance(body, dict) else {}
    path = _PARAM.sub(lambda m: _path_value(fields.get(m.group(1), _ABSENT)), where.path)
    if body is None or dialect.is_contract or route not in ("purchase", "tip", "deduct"):
        return WireRequest(where.method, path, {}, body, body is not None)
    if not isinstance(body, dict):
        return WireRequest(where.method, path, {}, body, True)
    shape = dialect.request(route)
    headers: dict[str, str] = {}
    rendered: Any
    if shape.body is None:
        rendered = {k: v for k, v in body.items() if k != KEY_FIELD}
    else:
        rendered = _render(shape.body, body)
        if rendered is _ABSENT:
            rendered = {}
    if KEY_FIELD in body:
        key = body[KEY_FIELD]
        if shape.key_in == "header":
            headers[shape.key_name] = key if isinstance(key, str) else str(key)
        else:
            _set(rendered, shape.key_name, key)
    return WireRequest(where.method, path, headers, rendered, True)


def _path_value(value: Any) -> str:
    if value is _ABSENT or value is None or value == "":
        return MISSING_PATH_VALUE
    return quote(value if isinstance(value, str) else str(value), safe="")


def _render(template: Any, fields: dict[str, Any]) -> Any:
    if isinstance(template, str):
        whole = _WHOLE.match(template)
        if whole:
            return fields.get(whole.group(1), _ABSENT)
        names = _PARAM.findall(template)
        if any(n not in fields for n in names):
            return _ABSENT
        return _PARAM.sub(lambda m: str(fields[m.group(1)]), template)
    if isinstance(template, dict):
        out = {k: _render(v, fields) for k, v in template.items()}
        return {k: v for k, v in out.items() if v is not _ABSENT}
    if isinstance(template, list):
        return [v for v in (_render(t, fields) for t in template) if v is not _ABSENT]
    return template


def _set(body: Any, dotted: str, value: Any) -> None:
    if not isinstance(body, dict):
        return
    parts = dotted.split(".")
    for part in parts[:-1]:
        nested = body.get(part)
        if not isinstance(nested, dict):
            nested = body[part] = {}
        body = nested
    body[parts[-1]] = value


def _drop(body: Any, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        if not isinstance(body, dict):
            return
        body = body.get(part)
    if isinstance(body, dict):
        body.pop(leaf, None)


def _get(body: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(body, dict) or part not in body:
            return _ABSENT
        body = body[part]
    return body


def contract_status(dialect: Dialect, route: str, status: int) -> int:
    """The contract's code for the service's `status` on `route`."""
    for outcome, codes in dialect.statuses.items():
        contract_code, routes = OUTCOMES[outcome]
        if route in routes and status in codes:
            if outcome == "outage" and status in (502, 503):
                return status
            return contract_code
    return status


def contract_answer(dialect: Dialect, route: str, status: int, body: Any) -> tuple[int, Any]:
    """The service's answer as the contract words it: the status code mapped, and
    the fields the checks read copied to the contract's paths. The service's own
    fields stay in the body (evidence shows what it said)."""
    if dialect.is_contract:
        return status, body
    mapped = contract_status(dialect, route, status)
    paths = dialect.answers.get(route)
    if not paths or not isinstance(body, dict) or not 200 <= mapped < 300:
        return mapped, body
    out = copy.deepcopy(body)
    for contract_field in ANSWER_FIELDS.get(route, ()):
        service_path = paths.get(contract_field)
        if service_path is None:
            continue
        value = _get(body, service_path)
        if value is not _ABSENT:
            _set(out, contract_field, value)
        else:
            # A key of the contract's name the service happens to send is its own
            # word, not the mapped field: the field is missing.
            _drop(out, contract_field)
    return mapped, out


def auth_header(dialect: Dialect, token: str) -> tuple[str, str]:
    scheme = dialect.auth.scheme
    return dialect.auth.header, f"{scheme} {token}" if scheme else token


def sign_token(
    dialect: Dialect,
    user: str,
    secret: str,
    *,
    ttl_s: int | None = 3600,
    key: str | None = None,
    **claims: Any,
) -> str:
    """A token as the service expects one for `user`; `ttl_s=None` leaves out `exp`
    (the security suite's token that must be refused), `key` signs with another key."""
    payload: dict[str, Any] = {dialect.auth.user_claim: user, **dialect.auth.claims, **claims}
    if ttl_s is not None:
        payload["exp"] = int(time.time()) + ttl_s
    return jwt.encode(payload, key or secret, algorithm=dialect.auth.algorithm)
