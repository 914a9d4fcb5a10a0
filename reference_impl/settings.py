"""Configuration from the contract's environment variables, checked once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class ConfigError(Exception):
    """A missing or malformed environment variable; the message names it."""


@dataclass(frozen=True)
class Settings:
    port: int
    database_url: str
    jwt_secret: str
    stripe_secret_key: str
    stripe_api_base: str
    stripe_webhook_secret: str
    purchase_limit_per_minute: int = 600
    pool_size: int = 20
    stripe_max_retries: int = 2
    stripe_timeout_s: float = 20.0
    frontend_url: str = "http://localhost:3000"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def need(name: str) -> str:
            value = env.get(name, "")
            if not value:
                raise ConfigError(f"{name} is not set; the service needs it (see the contract)")
            return value

        def integer(name: str, default: int, low: int, high: int) -> int:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            if not raw.isdigit() or not low <= int(raw) <= high:
                raise ConfigError(f"{name}={raw!r}: give a whole number from {low} to {high}")
            return int(raw)

        secret_key = need("STRIPE_SECRET_KEY")
        if not secret_key.startswith("sk_"):
            raise ConfigError("STRIPE_SECRET_KEY must look like sk_test_...")
        webhook_secret = need("STRIPE_WEBHOOK_SECRET")
        if not webhook_secret.startswith("whsec_"):
            raise ConfigError("STRIPE_WEBHOOK_SECRET must look like whsec_...")
        need("PORT")  # required: integer() alone would default it
        return cls(
            port=integer("PORT", 0, 1, 65535),
            database_url=need("DATABASE_URL"),
            jwt_secret=need("JWT_SECRET"),
            stripe_secret_key=secret_key,
            stripe_api_base=need("STRIPE_API_BASE").rstrip("/"),
            stripe_webhook_secret=webhook_secret,
            purchase_limit_per_minute=integer("PURCHASE_LIMIT_PER_MINUTE", 600, 1, 10**6),
            pool_size=integer("DB_POOL_SIZE", 20, 1, 500),
            stripe_max_retries=integer("STRIPE_MAX_NETWORK_RETRIES", 2, 0, 10),
            frontend_url=env.get("FRONTEND_URL") or "http://localhost:3000",
        )
