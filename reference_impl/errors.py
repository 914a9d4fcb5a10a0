"""Domain errors: each maps to one HTTP status in routes.py."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 500
    public_message = "internal error"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message or self.public_message)
        self.message = message or self.public_message
        self.details = details


class InvalidInput(ServiceError):
    status = 400
    public_message = "invalid request"


class NotFound(ServiceError):
    status = 404
    public_message = "not found"


class InsufficientBalance(ServiceError):
    status = 402
    public_message = "Insufficient token balance"


class PaymentDeclined(ServiceError):
    status = 402
    public_message = "Your card was declined"


class KeyReused(ServiceError):
    status = 409
    public_message = "clientIdempotencyKey was already used with a different request"


class RateLimited(ServiceError):
    status = 429
    public_message = "too many purchases; try again in a minute"


class PaymentProviderUnavailable(ServiceError):
    status = 502
    public_message = "the payment provider is unavailable; try again"


class Busy(ServiceError):
    status = 503
    public_message = "the service is busy; try again"
