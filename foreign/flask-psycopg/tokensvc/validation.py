"""Request body parsing. Amounts: a JSON integer or a canonical digit string."""

from __future__ import annotations

import re
from typing import Any

from flask import request

from tokensvc import defects
from tokensvc.config import MAX_TEXT, MAX_TOKENS
from tokensvc.errors import ApiError, bad_request

_CANONICAL = re.compile(r"[1-9][0-9]*")  # ASCII only: no \d (it matches other scripts' digits)


def json_object() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Expected application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object", "invalid_body")
    return body


def token_amount(value: Any, field: str = "tokenAmount") -> int:
    if defects.on("lenient-amounts"):
        # "int() handles both numbers and numeric strings"
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise bad_request(f"{field} must be a whole number", "invalid_amount") from None
        if n <= 0:
            raise bad_request(f"{field} must be positive", "invalid_amount")
        return n
    if isinstance(value, bool):  # bool is an int subclass
        raise bad_request(f"{field} must be a whole number", "invalid_amount")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and len(value) <= 10 and _CANONICAL.fullmatch(value):
        n = int(value)
    else:
        raise bad_request(f"{field} must be a whole number", "invalid_amount")
    if not 1 <= n <= MAX_TOKENS:
        raise bad_request(f"{field} must be between 1 and {MAX_TOKENS}", "invalid_amount")
    return n


def text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise bad_request(f"{field} must be a non-empty string of at most {MAX_TEXT} characters", "invalid_field")
    return value


def idempotency_key(body: dict[str, Any]) -> str | None:
    value = body.get("clientIdempotencyKey")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise bad_request("clientIdempotencyKey must be a non-empty string", "invalid_field")
    return value
