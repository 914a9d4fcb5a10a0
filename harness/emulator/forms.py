"""Stripe's form encoding: `metadata[userId]=42&expand[0]=latest_charge`."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from harness.emulator.errors import StripeError

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_form(body: bytes) -> dict[str, Any]:
    """Nested dicts for bracketed keys; dicts whose keys are 0..n-1 become lists."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StripeError.invalid_request("Invalid request body: not form-encoded.") from exc
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise StripeError.invalid_request(f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise StripeError.invalid_request(
                    f"Invalid parameter: {key} mixes a value and a hash", param=path[0]
                )
            node = child
        if isinstance(node.get(path[-1]), dict):
            raise StripeError.invalid_request(
                f"Invalid parameter: {key} mixes a value and a hash", param=path[0]
            )
        node[path[-1]] = value
    return _lists(root)


def _lists(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            value = _lists(value)
            if (
                value
                and all(k.isdigit() for k in value)
                and sorted(int(k) for k in value) == list(range(len(value)))
            ):
                value = [value[str(i)] for i in range(len(value))]
        out[key] = value
    return out
