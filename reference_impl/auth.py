"""Supabase-style bearer tokens: HS256, `sub` = supabase_id, `exp` required."""

from __future__ import annotations

import jwt


class Unauthorized(Exception):
    pass


def user_from_bearer(header: str | None, secret: str) -> str:
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("missing bearer token")
    return user_from_token(header[len("Bearer ") :], secret)


def user_from_token(token: str, secret: str) -> str:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],  # never "none", never what the token says
            options={"require": ["exp", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid token") from exc
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 200:
        raise Unauthorized("invalid subject")
    return sub
