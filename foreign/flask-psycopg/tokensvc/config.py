"""Configuration: the contract's environment variables, loaded into Flask's
`app.config` under the same names, and the business constants."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"environment variable {name} is required")
    return value


def from_env() -> dict[str, Any]:
    """Flask config keys; PORT is gunicorn's (gunicorn.conf.py)."""
    return {
        "DATABASE_URL": _required("DATABASE_URL"),
        "JWT_SECRET": _required("JWT_SECRET"),
        "STRIPE_SECRET_KEY": _required("STRIPE_SECRET_KEY"),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/"),
        "STRIPE_WEBHOOK_SECRET": _required("STRIPE_WEBHOOK_SECRET"),
        "DB_POOL_MAX": int(os.environ.get("DB_POOL_MAX", "10")),
        "STRIPE_TIMEOUT_S": float(os.environ.get("STRIPE_TIMEOUT_S", "30")),
        "STRIPE_MAX_RETRIES": int(os.environ.get("STRIPE_MAX_RETRIES", "2")),
    }


# Price table (tokens -> USD cents) and business constants.
PRICE_CENTS: dict[int, int] = {100: 99, 500: 499, 1000: 999, 5000: 4999, 10000: 9999}
BONUS_THRESHOLD = 5000
BONUS_RATE_PERCENT = 5
TOKEN_VALUE_USD = Decimal("0.05")
MAX_TOKENS = 10**9
MAX_TEXT = 200


def bonus_for(tokens: int) -> int:
    from tokensvc import defects

    if defects.on("no-bonus"):
        # The pricing page promises the bonus; this build forgot it.
        return 0
    return tokens * BONUS_RATE_PERCENT // 100 if tokens >= BONUS_THRESHOLD else 0
