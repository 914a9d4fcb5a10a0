"""Settings from the environment (names fixed by the target contract)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"environment variable {name} is required")
    return value


@dataclass(frozen=True)
class Settings:
    port: int
    database_url: str
    jwt_secret: str
    stripe_secret_key: str
    stripe_api_base: str
    stripe_webhook_secret: str
    db_pool_max: int
    stripe_timeout_s: float
    stripe_max_retries: int


def load() -> Settings:
    return Settings(
        port=int(os.environ.get("PORT", "8000")),
        database_url=_required("DATABASE_URL"),
        jwt_secret=_required("JWT_SECRET"),
        stripe_secret_key=_required("STRIPE_SECRET_KEY"),
        stripe_api_base=os.environ.get("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/"),
        stripe_webhook_secret=_required("STRIPE_WEBHOOK_SECRET"),
        db_pool_max=int(os.environ.get("DB_POOL_MAX", "10")),
        stripe_timeout_s=float(os.environ.get("STRIPE_TIMEOUT_S", "30")),
        stripe_max_retries=int(os.environ.get("STRIPE_MAX_RETRIES", "2")),
    )


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
