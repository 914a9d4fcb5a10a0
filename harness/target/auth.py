"""Bearer tokens as the contract describes them (Supabase-style HS256 JWTs)."""

from __future__ import annotations

from typing import Any

from harness.dialect.model import CONTRACT
from harness.dialect.wire import sign_token


def make_token(sub: str, secret: str, *, ttl_s: int = 3600, **claims: Any) -> str:
    """A token for `sub` as the contract's own dialect signs it."""
    return sign_token(CONTRACT, sub, secret, ttl_s=ttl_s, **claims)
