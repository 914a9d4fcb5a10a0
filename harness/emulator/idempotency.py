"""Idempotency keys as Stripe keeps them: replay, mismatch, in-flight."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from harness.emulator.errors import StripeError

KEY_TTL_S = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass
class SavedResponse:
    status: int
    body: dict[str, Any]
    request_id: str | None = None  # the request that ran (Stripe's Original-Request)


@dataclass
class KeyRecord:
    key: str
    fingerprint: str
    created: float
    response: SavedResponse | None = None  # None while the first request runs
    replays: int = 0
    mismatches: int = 0
    in_flight_conflicts: int = 0
    history: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "fingerprint": self.fingerprint,
            "created": self.created,
            "status": None if self.response is None else self.response.status,
            "replays": self.replays,
            "mismatches": self.mismatches,
            "in_flight_conflicts": self.in_flight_conflicts,
        }


def fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    return orjson.dumps([method, path, params], option=orjson.OPT_SORT_KEYS).decode()


class IdempotencyStore:
    def __init__(self) -> None:
        self.records: dict[str, KeyRecord] = {}

    def begin(self, key: str, print_: str, now: float) -> SavedResponse | None:
        """A saved response to replay, or None when this request should run.

        Raises the 400 / 409 Stripe answers for a mismatch or a key in use.
        """
        if len(key) > MAX_KEY_LENGTH:
            raise StripeError.invalid_request(
                f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters long"
            )
        record = self.records.get(key)
        if record is not None and now - record.created > KEY_TTL_S:
            del self.records[key]
            record = None
        if record is None:
            self.records[key] = KeyRecord(key, print_, now)
            return None
        if record.fingerprint != print_:
            record.mismatches += 1
            raise StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters "
                f"they were first used with. Try using a key other than '{key}' if you "
                "meant to execute a different request.",
            )
        if record.response is None:
            record.in_flight_conflicts += 1
            raise StripeError(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                f"going through): {key}. Please try again later.",
                code="idempotency_key_in_use",
            )
        record.replays += 1
        return record.response

    def finish(self, key: str, response: SavedResponse) -> None:
        record = self.records.get(key)
        if record is not None:
            record.response = response

    def abandon(self, key: str) -> None:
        """The request never ran (a fault before it): nothing is saved."""
        record = self.records.get(key)
        if record is not None and record.response is None:
            del self.records[key]
