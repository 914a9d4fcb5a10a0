"""Bearer JWT (HS256, Supabase-shaped: sub = supabase_id, exp required)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jwt
from flask import current_app, g, request

from tokensvc import defects
from tokensvc.errors import ApiError


def _unauthorized(detail: str = "Authentication required") -> ApiError:
    return ApiError(401, "unauthorized", detail)


def current_subject() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized()
    options: dict[str, Any] = {"require": ["exp", "sub"]}
    if defects.on("jwt-no-exp"):
        options = {"require": ["sub"]}
    try:
        claims = jwt.decode(
            token.strip(),
            current_app.config["JWT_SECRET"],
            algorithms=["HS256"],
            options=options,
        )
    except jwt.PyJWTError:
        raise _unauthorized("Invalid or expired token") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > 255:
        raise _unauthorized("Invalid or expired token")
    return sub


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.user_id = current_subject()
        return view(*args, **kwargs)

    return wrapper
