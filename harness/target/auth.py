"""Bearer tokens as the contract describes them (Supabase-style HS256 JWTs)."""

from __future__ import annotations

import time
from typing import Any

import jwt


def make_token(sub: str, secret: str, *, ttl_s: int = 3600, **claims: Any) -> str:
    payload = {"sub": sub, "exp": int(time.time()) + ttl_s, "role": "authenticated", **claims}
    return jwt.encode(payload, secret, algorithm="HS256")
