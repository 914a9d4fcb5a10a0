"""Errors in Stripe's shape: `{"error": {"type", "code", "message", ...}}`."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An API error the emulator answers with; never a crash.

    `saved` says whether the answer is kept under the request's idempotency key:
    Stripe saves a result only once the endpoint has started executing, so a
    request refused by parameter validation saves nothing and may be retried
    with the same key and corrected parameters.
    """

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
        saved: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.saved = saved

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        for key in ("code", "param", "decline_code"):
            value = getattr(self, key)
            if value is not None:
                error[key] = value
        if self.code:
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        error.update(self.extra)
        return {"error": error}

    @classmethod
    def invalid_request(
        cls,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int = 400,
        extra: dict[str, Any] | None = None,
    ) -> StripeError:
        """A request refused while executing (its answer is saved under the key)."""
        return cls(status, "invalid_request_error", message, code=code, param=param, extra=extra)

    @classmethod
    def invalid_param(
        cls, message: str, *, param: str | None = None, code: str | None = None
    ) -> StripeError:
        """A request refused by parameter validation: nothing ran, nothing is saved."""
        return cls(400, "invalid_request_error", message, code=code, param=param, saved=False)

    @classmethod
    def missing(cls, kind: str, ident: str, param: str = "id") -> StripeError:
        return cls(
            404,
            "invalid_request_error",
            f"No such {kind}: '{ident}'",
            code="resource_missing",
            param=param,
        )
