"""`Run`: what a scenario body acts through (the contract's routes as its users,
the emulator, the contention gate, settling), every call recorded in the
history. A leaf of the run stage: scenarios name it, the runner builds it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from typing_extensions import Unpack

from harness.checkers import Observation, Violation
from harness.contract import citation, purchase_body, transfer_body
from harness.dialect.wire import WireRequest, sign_token, wire_request
from harness.errors import TokenproofError
from harness.history import History
from harness.run.collect import read_db
from harness.run.gates import ContentionGate
from harness.run.options import RunOptions
from harness.run.record import recorded
from harness.run.settle import DELIVERIES_WITHIN_S, settle
from harness.state import DbState
from harness.target.client import Answer, RequestOptions, TargetClient
from harness.target.emulator_client import EmulatorClient
from harness.target.start import Target

T = TypeVar("T")


class ScenarioCouldNotRun(TokenproofError):
    """Something a scenario needs did not happen; it says nothing of the service."""


class Run:
    """What a scenario body acts through. Every call is recorded in the history."""

    def __init__(
        self,
        target: Target,
        client: TargetClient,
        history: History,
        users: dict[str, str],
        seed: int,
        options: RunOptions | None = None,
    ) -> None:
        self.target = target
        self.seed = seed
        self.options = options or RunOptions()
        self.client = client
        self.history = history
        self.users = users
        self.rng = random.Random(seed)
        self.stripe: EmulatorClient = target.emulator
        self.expectations: list[Violation] = []
        self.expectations_checked = 0
        self.notes: list[str] = []
        self.actions: list[tuple[float, str]] = []
        self.ops_elsewhere = 0  # see ScenarioReport.ops_elsewhere
        self.skipped = False
        self._worker = 0

    def expect(self, holds: bool, invariant: str, message: str, **evidence: Any) -> bool:
        """A scenario's own expectation (a 4xx for bad input, a rejected forgery, ...).
        `invariant` must cite the contract (`harness.contract.INVARIANTS`)."""
        citation(invariant)
        self.expectations_checked += 1
        if not holds:
            self.expectations.append(Violation(invariant, message, evidence))
        return holds

    def expect_ok(self, answer: Answer, invariant: str, what: str, **evidence: Any) -> bool:
        """`expect` that `answer` is a 200; `what` names the request in the message."""
        message = f"{what} answered {answer.status} {answer.body!r:.200}"
        return self.expect(answer.status == 200, invariant, message, **evidence)

    def require(self, holds: bool, what: str) -> None:
        """What the scenario needs to go on (not a property of the service): when it
        does not hold, the scenario could not run, and says why."""
        if not holds:
            raise ScenarioCouldNotRun(what)

    async def intents_of(self, user: str) -> list[dict[str, Any]]:
        """The PaymentIntents created for one of this scenario's users, as Stripe
        knows them (the contract puts `userId` in every intent's metadata)."""
        full = self.user(user)
        state = await asyncio.to_thread(self.stripe.state, metadata_prefix=("userId", full))
        return [i for i in state["intents"] if (i.get("metadata") or {}).get("userId") == full]

    def skip(self, reason: str) -> None:
        """Say why this scenario has nothing to do against this target (it passes,
        with the reason noted); call it before returning early."""
        self.skipped = True
        self.notes.append(f"skipped: {reason}")

    async def settled(self, within: float = DELIVERIES_WITHIN_S) -> Observation:
        """Release held webhooks, wait until Stripe has delivered everything it
        meant to, then until the service's rows show every outcome it acknowledged
        (a queue worker may credit after its 2xx) and stop changing, or the
        target's settle deadline passes. Returns that read of this scenario's users."""
        return await settle(
            self.target, self.users.values(), self.history.ops, deliveries_within=within
        )

    def act(self, what: str) -> None:
        """Record something tokenproof does to the service (kill, restart, a fault):
        the report's timeline shows it beside the requests."""
        self.actions.append((self.history.now(), what))

    def note(self, text: str) -> None:
        """A figure worth reporting (a latency, a count), shown next to the result."""
        self.notes.append(text)

    def progress(self, text: str) -> None:
        """How far a long scenario is, for whoever watches the run."""
        self.options.on_progress(text)

    def user(self, local: str) -> str:
        try:
            return self.users[local]
        except KeyError:
            raise KeyError(
                f"{local!r} is not among this scenario's users {sorted(self.users)}"
            ) from None

    def worker(self) -> str:
        self._worker += 1
        return f"w{self._worker}"

    async def call(
        self,
        f: str,
        method: str,
        path: str,
        *,
        user: str | None,
        json: Any = None,
        worker: str | None = None,
        args: dict[str, Any] | None = None,
        route: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Answer:
        """Any request, sent as given (not in the target's dialect: for the
        contract's routes use `send`); recorded as op `f`. `route`: the contract
        route it is, whose answer is then read in the dialect's words."""
        full_user = self.user(user) if user is not None else None
        request = self.client.call(method, path, user=full_user, json=json, route=route, **options)
        if args is None:
            args = _as_args(json)
        return await recorded(self.history, worker or self.worker(), f, full_user, args, request)

    def wire(self, f: str, body: Any = None) -> WireRequest:
        """The contract route `f` with `body` as the target's dialect words it
        (method, path, headers, body): for a request a scenario alters itself."""
        return wire_request(self.target.dialect, f, body)

    def token(self, user: str, *, ttl_s: int | None = 3600, key: str | None = None) -> str:
        """A token for `user` as the target expects one; `ttl_s=None` leaves out
        `exp`, a negative one has expired, `key` signs with another key."""
        return sign_token(
            self.target.dialect, self.user(user), self.target.jwt_secret, ttl_s=ttl_s, key=key
        )

    async def send(
        self,
        f: str,
        user: str | None,
        body: Any = None,
        *,
        worker: str | None = None,
        args: dict[str, Any] | None = None,
        **options: Unpack[RequestOptions],
    ) -> Answer:
        """The contract's route `f` (`purchase`, `tip`, `deduct`, `balance`,
        `webhook`) with the contract's `body`, in the target's dialect; recorded.
        `content`: raw bytes to the route instead of a body; `token`: this token
        instead of the user's (no user and no token: none at all)."""
        full_user = self.user(user) if user is not None else None
        request = self.client.send(f, full_user, body, **options)
        if args is None:
            args = _as_args(body)
        return await recorded(self.history, worker or self.worker(), f, full_user, args, request)

    async def tip(
        self,
        fan: str,
        creator: str,
        amount: Any,
        *,
        key: str | None = None,
        channel: str = "live",
        worker: str | None = None,
    ) -> Answer:
        body = transfer_body("tip", self.user(creator), amount, context=channel, key=key)
        return await self.send("tip", fan, body, worker=worker)

    async def deduct(
        self,
        fan: str,
        creator: str,
        amount: Any,
        *,
        call_id: str = "call-1",
        key: str | None = None,
        worker: str | None = None,
    ) -> Answer:
        body = transfer_body("deduct", self.user(creator), amount, context=call_id, key=key)
        return await self.send("deduct", fan, body, worker=worker)

    async def purchase(
        self,
        fan: str,
        tokens: Any,
        *,
        method: str = "pm_card_visa",
        key: str | None = None,
        worker: str | None = None,
        timeout_s: float | None = None,
    ) -> Answer:
        body = purchase_body(tokens, method, key)
        return await self.send("purchase", fan, body, worker=worker, timeout_s=timeout_s)

    async def balance(
        self, fan: str, *, timeout_s: float | None = None, new_connection: bool = False
    ) -> Answer:
        """`new_connection`: on a connection of its own, closed after it (a server
        with several worker processes may then hand it to any of them)."""
        headers = {"Connection": "close"} if new_connection else None
        return await self.send("balance", fan, timeout_s=timeout_s, headers=headers)

    async def gather(self, *calls: Awaitable[T]) -> list[T]:
        return list(await asyncio.gather(*calls))

    def gate(self, expect: int, **kwargs: Any) -> ContentionGate:
        kwargs.setdefault("on_partial", self.note)
        kwargs.setdefault("lock_sql", self.target.dialect.lock("ledger"))
        return ContentionGate(self.target.database_url, expect, **kwargs)

    async def db(self) -> DbState:
        dialect = self.target.dialect
        if dialect.sql("ledger") is None:
            return await read_db(self.target.database_url)
        return await read_db(self.target.database_url, self.users.values(), dialect=dialect)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        return asyncio.ensure_future(coro)


def _as_args(body: Any) -> dict[str, Any]:
    """What an op records of a request's body: the body itself when it is an
    object, else under "body"."""
    return body if isinstance(body, dict) else {"body": body}
