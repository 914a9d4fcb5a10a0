"""Stripe (sync stripe-python client) for purchases."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

import stripe


log = logging.getLogger("tokensvc.stripe")

_client: stripe.StripeClient | None = None
_lock = threading.Lock()


def client(cfg: Mapping[str, Any]) -> stripe.StripeClient:
    global _client
    with _lock:
        if _client is None:
            _client = stripe.StripeClient(
                cfg["STRIPE_SECRET_KEY"],
                base_addresses={"api": cfg["STRIPE_API_BASE"]},
                # stripe-python does not retry unless told to; its retries reuse
                # the request's Idempotency-Key, so they are safe.
                max_network_retries=cfg["STRIPE_MAX_RETRIES"],
                http_client=stripe.RequestsClient(timeout=cfg["STRIPE_TIMEOUT_S"]),
            )
    return _client


def stripe_idempotency_key(user_id: str, client_key: str) -> str:
    """Stable per (user, client key): a retried purchase reaches Stripe with the
    same key, so Stripe charges once and replays its first answer."""
    digest = hashlib.sha256(f"{user_id}\x00{client_key}".encode()).hexdigest()
    return f"tokens-purchase-{digest}"


def create_intent(
    cfg: Mapping[str, Any],
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
    return client(cfg).v1.payment_intents.create(params=params, options=options)  # type: ignore[arg-type]
