"""Stripe (sync stripe-python client) for purchases."""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

import stripe

from tokensvc.config import Settings

log = logging.getLogger("tokensvc.stripe")

_client: stripe.StripeClient | None = None
_lock = threading.Lock()


def client(settings: Settings) -> stripe.StripeClient:
    global _client
    with _lock:
        if _client is None:
            _client = stripe.StripeClient(
                settings.stripe_secret_key,
                base_addresses={"api": settings.stripe_api_base},
                # stripe-python does not retry unless told to; its retries reuse
                # the request's Idempotency-Key, so they are safe.
                max_network_retries=settings.stripe_max_retries,
                http_client=stripe.RequestsClient(timeout=settings.stripe_timeout_s),
            )
    return _client


def stripe_idempotency_key(user_id: str, client_key: str) -> str:
    """Stable per (user, client key): a retried purchase reaches Stripe with the
    same key, so Stripe charges once and replays its first answer."""
    digest = hashlib.sha256(f"{user_id}\x00{client_key}".encode()).hexdigest()
    return f"tokens-purchase-{digest}"


def create_intent(
    settings: Settings,
    *,
    user_id: str,
    tokens: int,
    bonus: int,
    amount_cents: int,
    payment_method: str,
    client_key: str,
    stripe_key: str | None,
) -> Any:
    params: dict[str, Any] = {
        "amount": amount_cents,
        "currency": "usd",
        "payment_method": payment_method,
        "confirm": True,
        # confirm=true without a return_url needs redirects switched off.
        "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        "description": f"Purchase of {tokens} tokens" + (f" + {bonus} bonus" if bonus else ""),
        "metadata": {
            "userId": user_id,
            "tokenAmount": str(tokens),
            "bonusTokens": str(bonus),
            "clientIdempotencyKey": client_key,
        },
    }
    options: dict[str, Any] = {}
    if stripe_key:
        options["idempotency_key"] = stripe_key
    return client(settings).v1.payment_intents.create(params=params, options=options)  # type: ignore[arg-type]
