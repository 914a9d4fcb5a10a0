"""HTTP calls to a target, as a fan or creator would make them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from harness.contract import ROUTES
from harness.target.auth import make_token


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # parsed JSON, or the raw text when the body is not JSON

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class TargetClient:
    """One connection pool to the service; each call names the acting user."""

    def __init__(self, base_url: str, jwt_secret: str, *, timeout_s: float = 30.0) -> None:
        self.jwt_secret = jwt_secret
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
        )
        self._tokens: dict[str, str] = {}
        self.requests_sent = 0

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> TargetClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def token(self, user: str) -> str:
        if user not in self._tokens:
            self._tokens[user] = make_token(user, self.jwt_secret)
        return self._tokens[user]

    async def call(
        self,
        method: str,
        path: str,
        *,
        user: str | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Answer:
        timeout: Any = timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        all_headers = dict(headers or {})
        if user is not None:
            all_headers["Authorization"] = f"Bearer {self.token(user)}"
        self.requests_sent += 1
        if json is not None:
            response = await self.http.request(
                method, path, json=json, headers=all_headers, timeout=timeout
            )
        else:
            response = await self.http.request(
                method, path, content=content, headers=all_headers, timeout=timeout
            )
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        return Answer(response.status_code, body)

    async def send(self, f: str, user: str, body: dict[str, Any] | None = None) -> Answer:
        """The contract's route `f` (`ROUTES`) as `user`."""
        method, path = ROUTES[f]
        return await self.call(method, path, user=user, json=body)

    async def purchase(self, user: str, body: dict[str, Any]) -> Answer:
        return await self.send("purchase", user, body)

    async def tip(self, user: str, body: dict[str, Any]) -> Answer:
        return await self.send("tip", user, body)

    async def deduct(self, user: str, body: dict[str, Any]) -> Answer:
        return await self.send("deduct", user, body)

    async def balance(self, user: str) -> Answer:
        return await self.send("balance", user)
