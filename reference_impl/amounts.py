"""Token amounts and prices: whole tokens only, exact money."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

MAX_TOKENS = 10**9
# tokens -> USD. A purchase must be one of these packages.
TOKEN_PRICES: dict[int, Decimal] = {
    100: Decimal("0.99"),
    500: Decimal("4.99"),
    1000: Decimal("9.99"),
    5000: Decimal("49.99"),
    10000: Decimal("99.99"),
}
BONUS_THRESHOLD = 5000
BONUS_RATE_PERCENT = 5
TOKEN_VALUE_USD = Decimal("0.05")
_CANONICAL = re.compile(r"[1-9][0-9]*\Z")


class InvalidAmount(ValueError):
    pass


def parse_tokens(value: Any) -> int:
    """A positive whole number of tokens: a JSON integer or its canonical digit string.

    Unlike parseInt, "12abc", "1e3", " 5", "0100", 1.5, true are all refused.
    """
    if isinstance(value, bool):
        raise InvalidAmount("tokenAmount must be a whole number, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _CANONICAL.match(value) and len(value) <= 10:
        number = int(value)
    else:
        raise InvalidAmount('tokenAmount must be a positive whole number such as 100 or "100"')
    if not 1 <= number <= MAX_TOKENS:
        raise InvalidAmount(f"tokenAmount must be between 1 and {MAX_TOKENS}")
    return number


def bonus_for(tokens: int) -> int:
    return tokens * BONUS_RATE_PERCENT // 100 if tokens >= BONUS_THRESHOLD else 0


def cents(usd: Decimal) -> int:
    return int((usd * 100).to_integral_exact())
