"""Reading a dialect file: every key checked, every mistake named with what to
write instead, nothing guessed. Keys left out keep the contract's words."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.dialect.model import (
    ANSWER_FIELDS,
    CONTRACT_FIELDS,
    CONTRACT_ROUTES,
    DATABASE_KEYS,
    KEY_FIELD,
    METADATA_FIELDS,
    OUTCOMES,
    REQUEST_ROUTES,
    ROUTE_NAMES,
    Auth,
    Dialect,
    RequestShape,
    Route,
)
from harness.errors import UsageError

SECTIONS = ("name", "routes", "requests", "answers", "statuses", "auth", "metadata", "database")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALGORITHMS = ("HS256", "HS384", "HS512")
_PARAM = re.compile(r"\{([^{}]*)\}")
_HEADER = re.compile(r"^[A-Za-z0-9-]+$")


class DialectError(UsageError):
    """A dialect file that cannot be used as written; the message names the key."""


def load_dialect(path: Path) -> Dialect:
    """A dialect file (its tables at the top level, or under `[dialect]`)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DialectError(f"cannot read the dialect file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DialectError(f"{path} is not readable TOML: {exc}") from exc
    if set(data) == {"dialect"} and isinstance(data["dialect"], dict):
        data = data["dialect"]
    return parse_dialect(data, source=str(path))


def parse_dialect(data: Mapping[str, Any], *, source: str | None = None) -> Dialect:
    where = source or "the dialect"
    _only(data, SECTIONS, where, "")
    mapped: set[str] = set()
    routes = dict(CONTRACT_ROUTES)
    _only(_table(data, "routes", where), ROUTE_NAMES, where, "routes.")
    for name, value in _table(data, "routes", where).items():
        routes[name] = _route(name, value, where)
        mapped.add(f"routes.{name}")
    requests: dict[str, RequestShape] = {}
    raw_requests = _table(data, "requests", where)
    _only(raw_requests, REQUEST_ROUTES, where, "requests.")
    for name in raw_requests:
        requests[name] = _request(name, _table(raw_requests, name, where, "requests."), where)
        mapped.add(f"requests.{name}")
    answers: dict[str, dict[str, str]] = {}
    raw_answers = _table(data, "answers", where)
    _only(raw_answers, tuple(ANSWER_FIELDS), where, "answers.")
    for name in raw_answers:
        table = _table(raw_answers, name, where, "answers.")
        _only(table, ANSWER_FIELDS[name], where, f"answers.{name}.")
        answers[name] = {k: _dotted(v, f"answers.{name}.{k}", where) for k, v in table.items()}
        mapped.add(f"answers.{name}")
    statuses = _statuses(_table(data, "statuses", where), where)
    mapped |= {f"statuses.{k}" for k in statuses}
    auth, auth_keys = _auth(_table(data, "auth", where), where)
    mapped |= {f"auth.{k}" for k in auth_keys}
    metadata_table = _table(data, "metadata", where)
    _only(metadata_table, METADATA_FIELDS, where, "metadata.")
    metadata = {k: _text(v, f"metadata.{k}", where) for k, v in metadata_table.items()}
    mapped |= {f"metadata.{k}" for k in metadata}
    database_table = _table(data, "database", where)
    _only(database_table, DATABASE_KEYS, where, "database.")
    database = {k: _text(v, f"database.{k}", where) for k, v in database_table.items()}
    mapped |= {f"database.{k}" for k in database}
    name = data.get("name", Path(source).parent.name if source else "dialect")
    return Dialect(
        name=_text(name, "name", where),
        routes=routes,
        requests=requests,
        answers=answers,
        statuses=statuses,
        auth=auth,
        metadata=metadata,
        database=database,
        mapped=frozenset(mapped),
        source=source,
    )


def _only(table: Mapping[str, Any], allowed: tuple[str, ...], where: str, prefix: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise DialectError(
            f"{where}: unknown key {prefix}{unknown[0]}; the keys here are "
            + ", ".join(prefix + a for a in allowed)
        )


def _table(data: Mapping[str, Any], key: str, where: str, prefix: str = "") -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise DialectError(f"{where}: {prefix}{key} must be a table ([{prefix}{key}])")
    return value


def _text(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DialectError(f"{where}: {key} must be a non-empty string, not {value!r}")
    return value


def _dotted(value: Any, key: str, where: str) -> str:
    text = _text(value, key, where)
    if any(not part for part in text.split(".")):
        raise DialectError(f"{where}: {key} must be a dotted path such as wallet.available")
    return text


def _route(name: str, value: Any, where: str) -> Route:
    text = _text(value, f"routes.{name}", where)
    parts = text.split()
    if len(parts) != 2 or parts[0].upper() not in METHODS or not parts[1].startswith("/"):
        raise DialectError(
            f'{where}: routes.{name} must be "METHOD /path" (e.g. "POST /v1/tips"), not {text!r}'
        )
    method, path = parts[0].upper(), parts[1]
    allowed = CONTRACT_FIELDS.get(name, ())
    for param in _PARAM.findall(path):
        if param not in allowed:
            raise DialectError(
                f"{where}: routes.{name} names {{{param}}}; a path parameter must be one of "
                f"this route's contract fields: {', '.join(allowed) or 'none'}"
            )
    if name in ("webhook", "health", "balance") and _PARAM.search(path):
        raise DialectError(f"{where}: routes.{name} cannot have path parameters")
    return Route(method, path)


def _request(name: str, table: dict[str, Any], where: str) -> RequestShape:
    _only(table, ("body", "idempotency-key"), where, f"requests.{name}.")
    body = table.get("body")
    if body is not None:
        if not isinstance(body, dict):
            raise DialectError(f"{where}: requests.{name}.body must be a table (a JSON object)")
        fields = CONTRACT_FIELDS[name]
        for used in _template_fields(body):
            if used not in fields:
                raise DialectError(
                    f"{where}: requests.{name}.body uses {{{used}}}; the fields of a {name} "
                    f"are {', '.join(fields)} (the key goes by idempotency-key)"
                )
    key_in, key_name = "body", KEY_FIELD
    if "idempotency-key" in table:
        text = _text(table["idempotency-key"], f"requests.{name}.idempotency-key", where)
        parts = text.split()
        if (
            len(parts) != 2
            or parts[0] not in ("body", "header")
            or (parts[0] == "header" and not _HEADER.match(parts[1]))
        ):
            raise DialectError(
                f'{where}: requests.{name}.idempotency-key must be "header <Name>" or '
                f'"body <dotted.path>", not {text!r}'
            )
        key_in, key_name = parts
    return RequestShape(body=body, key_in=key_in, key_name=key_name)


def _template_fields(template: Any) -> list[str]:
    if isinstance(template, str):
        return _PARAM.findall(template)
    if isinstance(template, dict):
        return [f for v in template.values() for f in _template_fields(v)]
    if isinstance(template, list):
        return [f for v in template for f in _template_fields(v)]
    return []


def _statuses(table: dict[str, Any], where: str) -> dict[str, tuple[int, ...]]:
    _only(table, tuple(OUTCOMES), where, "statuses.")
    statuses: dict[str, tuple[int, ...]] = {}
    for outcome, value in table.items():
        codes = value if isinstance(value, list) else [value]
        if not codes or not all(
            isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes
        ):
            raise DialectError(
                f"{where}: statuses.{outcome} must be a status code or a list of them, "
                f"not {value!r}"
            )
        statuses[outcome] = tuple(codes)
    # One code may not stand for two outcomes of one route.
    for route in ("purchase", "tip", "deduct", "balance"):
        seen: dict[int, str] = {}
        for outcome, (contract_code, routes) in OUTCOMES.items():
            if route not in routes:
                continue
            for code in statuses.get(outcome, (contract_code,)):
                other = seen.get(code)
                if other is not None and OUTCOMES[other][0] != contract_code:
                    raise DialectError(
                        f"{where}: status {code} stands for both {other} and {outcome} on "
                        f"{route}; tokenproof could not tell them apart"
                    )
                seen[code] = outcome
    return statuses


def _auth(table: dict[str, Any], where: str) -> tuple[Auth, set[str]]:
    keys = ("header", "scheme", "user-claim", "algorithm", "claims")
    _only(table, keys, where, "auth.")
    default = Auth()
    header = _text(table.get("header", default.header), "auth.header", where)
    if not _HEADER.match(header):
        raise DialectError(f"{where}: auth.header must be a header name, not {header!r}")
    scheme = table.get("scheme", default.scheme)
    if not isinstance(scheme, str) or " " in scheme:
        raise DialectError(f'{where}: auth.scheme must be one word ("Bearer") or ""')
    algorithm = table.get("algorithm", default.algorithm)
    if algorithm not in ALGORITHMS:
        raise DialectError(
            f"{where}: auth.algorithm must be one of {', '.join(ALGORITHMS)} (keyed with the "
            f"JWT secret), not {algorithm!r}"
        )
    claims = table.get("claims", dict(default.claims))
    if not isinstance(claims, dict):
        raise DialectError(f"{where}: auth.claims must be a table of claims")
    if "exp" in claims:
        raise DialectError(f"{where}: auth.claims cannot set exp; tokenproof sets it per token")
    auth = Auth(
        header=header,
        scheme=scheme,
        user_claim=_text(table.get("user-claim", default.user_claim), "auth.user-claim", where),
        algorithm=algorithm,
        claims=claims,
    )
    return auth, set(table)
