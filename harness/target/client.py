"""HTTP calls to a target, as a fan or creator would make them, in the target's
dialect: requests go out in its words, answers come back in the contract's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import httpx
from typing_extensions import Unpack

from harness.dialect.model import CONTRACT, Dialect
from harness.dialect.wire import auth_header, contract_answer, sign_token, wire_request

# How long an idle connection to the service is kept for reuse. A server closes
# idle keep-alive connections on its own clock (Node 5 s, uvicorn 5 s, gunicorn
# 2 s), and a request written onto one it is closing gets no answer at all: an
# unknown outcome the service did not cause. httpx keeps them 5 s, right in
# Node's window; below every common server's timeout, the race cannot happen.
KEEPALIVE_EXPIRY_S = 1.0


class RequestOptions(TypedDict, total=False):
    """How one request goes out, beyond its route, user and body."""

    content: bytes | None  # raw bytes instead of a JSON body
    headers: dict[str, str] | None  # added to (and over) the route's own
    timeout_s: float | None  # None: the client's
    token: str | None  # this token instead of the user's; no user and no token: none


@dataclass(frozen=True)
class Answer:
    status: int  # the contract's code for what the service answered
    body: Any  # parsed JSON (with the contract's fields), or the raw text when not JSON

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class TargetClient:
    """One connection pool to the service; each call names the acting user."""

    def __init__(
        self,
        base_url: str,
        jwt_secret: str,
        *,
        timeout_s: float = 30.0,
        dialect: Dialect = CONTRACT,
    ) -> None:
        self.jwt_secret = jwt_secret
        self.dialect = dialect
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_s,
            limits=httpx.Limits(
                max_connections=200,
                max_keepalive_connections=200,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
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
            self._tokens[user] = sign_token(self.dialect, user, self.jwt_secret)
        return self._tokens[user]

    def auth(self, token: str) -> dict[str, str]:
        """The header that carries `token`, as the service expects it."""
        name, value = auth_header(self.dialect, token)
        return {name: value}

    async def call(
        self,
        method: str,
        path: str,
        *,
        user: str | None = None,
        json: Any = None,
        route: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Answer:
        """One request as it is given (a path, a body); `route`: the contract route
        it is, whose answer is then read in the dialect's words."""
        timeout_s = options.get("timeout_s")
        timeout: Any = timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        all_headers = dict(options.get("headers") or {})
        token = options.get("token")
        if token is None and user is not None:
            token = self.token(user)
        if token is not None:
            all_headers.update(self.auth(token))
        self.requests_sent += 1
        if json is not None:
            response = await self.http.request(
                method, path, json=json, headers=all_headers, timeout=timeout
            )
        else:
            response = await self.http.request(
                method, path, content=options.get("content"), headers=all_headers, timeout=timeout
            )
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        status = response.status_code
        if route is not None:
            status, body = contract_answer(self.dialect, route, status, body)
        return Answer(status, body)

    async def send(
        self, f: str, user: str | None, body: Any = None, **options: Unpack[RequestOptions]
    ) -> Answer:
        """The contract's route `f` with the contract's `body`, in the dialect's
        words (`content`: raw bytes to the route's path instead)."""
        content = options.get("content")
        wire = wire_request(self.dialect, f, body if content is None else None)
        options["headers"] = {**wire.headers, **(options.get("headers") or {})}
        return await self.call(
            wire.method,
            wire.path,
            user=user,
            json=wire.json if content is None and wire.has_json else None,
            route=f,
            **options,
        )

    async def purchase(self, user: str, body: dict[str, Any]) -> Answer:
        return await self.send("purchase", user, body)

    async def tip(self, user: str, body: dict[str, Any]) -> Answer:
        return await self.send("tip", user, body)

    async def deduct(self, user: str, body: dict[str, Any]) -> Answer:
        return await self.send("deduct", user, body)

    async def balance(self, user: str) -> Answer:
        return await self.send("balance", user)
