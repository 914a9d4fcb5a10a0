"""Our error shape: {"detail": ..., "code": ..., "request_id": ...}."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import psycopg
from flask import Flask, g, jsonify
from psycopg_pool import PoolTimeout
from werkzeug.exceptions import HTTPException

from tokensvc import defects

log = logging.getLogger("tokensvc.errors")


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code, **self.extra}


def bad_request(detail: str, code: str = "invalid_request", **extra: Any) -> ApiError:
    return ApiError(400, code, detail, **extra)


def error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
    body = {**body, "request_id": getattr(g, "request_id", None)}
    resp = jsonify(body)
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def install(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        headers = {"Retry-After": "2"} if exc.status in (429, 503) else None
        return error_response(exc.status, exc.body(), headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, {"detail": exc.name, "code": code})

    @app.errorhandler(PoolTimeout)
    def _pool_timeout(exc: PoolTimeout):
        log.error("database pool exhausted: %s", exc)
        return error_response(
            503, {"detail": "Service busy, try again", "code": "unavailable"}, {"Retry-After": "2"}
        )

    @app.errorhandler(psycopg.OperationalError)
    def _db_down(exc: psycopg.OperationalError):
        log.error("database unavailable: %s", exc)
        if defects.on("leaky-errors"):
            return error_response(
                503, {"detail": str(exc), "code": "db_error", "trace": traceback.format_exc()}
            )
        return error_response(
            503, {"detail": "Database unavailable, try again", "code": "unavailable"}, {"Retry-After": "2"}
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        if defects.on("leaky-errors"):
            # Debug-style handler left in from development.
            return error_response(
                500, {"detail": str(exc), "code": type(exc).__name__, "trace": traceback.format_exc()}
            )
        return error_response(500, {"detail": "Internal server error", "code": "internal_error"})
