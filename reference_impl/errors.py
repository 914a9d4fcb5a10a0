"""Domain errors: each maps to one HTTP status in routes.py."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 500
    public_message = "internal error"

    def __init_subclass__(cls, *, status: int, public_message: str) -> None:
        cls.status = status
        cls.public_message = public_message

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message or self.public_message)
        self.message = message or self.public_message
        self.details = details


class InvalidInput(ServiceError, status=400, public_message="invalid request"):
    """A body, header or amount the contract does not accept."""


class NotFound(ServiceError, status=404, public_message="not found"):
    """A user the request names does not exist."""


class InsufficientBalance(ServiceError, status=402, public_message="Insufficient token balance"):
    """The sender has fewer tokens than the transfer moves."""


class PaymentDeclined(ServiceError, status=402, public_message="Your card was declined"):
    """Stripe declined the card."""


class KeyReused(
    ServiceError,
    status=409,
    public_message="clientIdempotencyKey was already used with a different request",
):
    """A client key came back with another body."""


class RateLimited(
    ServiceError, status=429, public_message="too many purchases; try again in a minute"
):
    """A fan's purchases per minute are over the limit."""


class PaymentProviderUnavailable(
    ServiceError, status=502, public_message="the payment provider is unavailable; try again"
):
    """Stripe could not be reached or kept failing."""


class Busy(ServiceError, status=503, public_message="the service is busy; try again"):
    """No database connection came free in time."""
