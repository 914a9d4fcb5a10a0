"""Stripe through the official SDK (async). Stripe's errors become domain errors here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import stripe

from reference_impl.errors import PaymentDeclined, PaymentProviderUnavailable
from reference_impl.settings import Settings


@dataclass(frozen=True)
class Intent:
    id: str
    status: str
    client_secret: str | None


def stripe_idempotency_key(user_id: str, client_key: str) -> str:
    """Stable per (user, client key): a retry of the purchase reuses it, so Stripe
    charges once however the retries arrive."""
    digest = hashlib.sha256(f"{user_id}\x00{client_key}".encode()).hexdigest()
    return f"purchase-{digest}"


class Payments:
    def __init__(self, settings: Settings) -> None:
        self._http = stripe.HTTPXClient(timeout=settings.stripe_timeout_s)
        # max_network_retries explicitly: stripe-python does not retry without it.
        self.client = stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses={"api": settings.stripe_api_base},
            max_network_retries=settings.stripe_max_retries,
            http_client=self._http,
        )
        self.return_url = settings.frontend_url

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def create_intent(
        self, *, amount_cents: int, metadata: dict[str, str], payment_method: str, key: str
    ) -> Intent:
        params: Any = {
            "amount": amount_cents,
            "currency": "usd",
            "payment_method": payment_method,
            "confirmation_method": "manual",
            "confirm": True,
            "return_url": self.return_url,
            "description": f"Purchase of {metadata['tokenAmount']} tokens",
            "metadata": metadata,
        }
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params=params, options={"idempotency_key": key}
            )
        except stripe.CardError as exc:
            pi = exc.error.payment_intent if exc.error else None
            raise PaymentDeclined(
                exc.user_message or "Your card was declined",
                decline_code=(exc.error.decline_code if exc.error else None) or exc.code,
                payment_intent_id=pi.id if pi else None,
            ) from exc
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing" and exc.param == "payment_method":
                raise PaymentDeclined(
                    "Unknown payment method", decline_code="invalid_payment_method"
                ) from exc
            raise PaymentProviderUnavailable() from exc
        except stripe.StripeError as exc:
            # Connection errors, 5xx, 429, idempotency conflicts after the SDK's
            # retries: the outcome is unknown to us, the client retries with its key.
            raise PaymentProviderUnavailable() from exc
        return Intent(intent.id, intent.status, intent.client_secret)
