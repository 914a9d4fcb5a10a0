"""`tokenproof dialect check`: every part of a target's dialect tried once against
the running service with a harmless request or read, and what each answered.
A part that does not answer as it should costs the invariants it carries
(`harness.dialect.costs`), said per invariant. verify's preflight runs it for a
target that speaks a dialect."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg
import httpx

from harness.contract import field_value, purchase_body, transfer_body
from harness.dialect.costs import costs
from harness.dialect.model import CONTRACT_SQL, DATABASE_COLUMNS, Dialect
from harness.target.client import Answer, TargetClient
from harness.target.types import Target
from harness.target.users import UserSpec, create_users
from harness.waiting import DeadlineExceeded, wait_until_async

GRANT = 100
WITHIN_S = 30.0


# ok; failed: the part does not answer where or how the dialect says (the
# mapping is wrong, or missing); doubtful: it answered, but not as the contract
# says, which may be the mapping or the service itself (the suites judge the
# service: a run is not stopped for it); not tried: a part it needs failed.
Status = Literal["ok", "failed", "doubtful", "not tried"]


@dataclass(frozen=True)
class PartResult:
    part: str  # "routes.tip", "database.ledger", "auth", ...
    mapped: str  # how the dialect words it ("POST /v1/tips", "contract default")
    status: Status
    detail: str

    @property
    def costs(self) -> tuple[str, ...]:
        return costs(self.part) if self.status in ("failed", "not tried") else ()


@dataclass
class DialectReport:
    dialect: Dialect
    parts: list[PartResult] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """Nothing failed: a run can judge the service through this dialect."""
        return not any(p.status in ("failed", "not tried") for p in self.parts)

    @property
    def ok(self) -> bool:
        """Every part answered as the contract says."""
        return all(p.status == "ok" for p in self.parts)

    def not_judged(self) -> dict[str, list[str]]:
        """Each invariant that cannot be judged, with the parts that cost it."""
        found: dict[str, list[str]] = {}
        for part in self.parts:
            for invariant in part.costs:
                found.setdefault(invariant, []).append(part.part)
        return found

    def lines(self) -> list[str]:
        width = max((len(p.part) for p in self.parts), default=10)
        mapped = max((len(p.mapped) for p in self.parts), default=10)
        rows = [f"{'part':<{width}}  {'mapped as':<{mapped}}  result"]
        for p in self.parts:
            result = {"failed": "FAILED", "doubtful": "DOUBTFUL"}.get(p.status, p.status)
            rows.append(f"{p.part:<{width}}  {p.mapped:<{mapped}}  {result}: {p.detail}")
        doubtful = [p.part for p in self.parts if p.status == "doubtful"]
        if doubtful:
            rows.append("")
            rows.append(
                "answered, but not as the contract says (the dialect's mapping, or the "
                "service itself, which the suites judge): " + ", ".join(doubtful)
            )
        judged = self.not_judged()
        if judged:
            rows.append("")
            rows.append("cannot be judged until these parts answer as the contract says:")
            for invariant, parts in sorted(judged.items()):
                rows.append(f"  {invariant}: {', '.join(parts)}")
        return rows


def _mapped(dialect: Dialect, part: str, words: str) -> str:
    named = part in dialect.mapped or any(m.startswith(part + ".") for m in dialect.mapped)
    return words if named else f"contract default ({words})"


class _Checker:
    def __init__(self, target: Target, run_id: str) -> None:
        self.target = target
        self.dialect = target.dialect
        self.report = DialectReport(target.dialect)
        self.fan = f"{run_id}-dialect-fan"
        self.creator = f"{run_id}-dialect-creator"

    def add(self, part: str, words: str, ok: bool, detail: str, *, doubtful: bool = False) -> bool:
        """`doubtful`: a failure here may be the service's, not the mapping's."""
        mapped = _mapped(self.dialect, part, words)
        status: Status = "ok" if ok else "doubtful" if doubtful else "failed"
        self.report.parts.append(PartResult(part, mapped, status, detail))
        return ok

    def skip(self, parts: list[tuple[str, str]], why: str) -> None:
        for part, words in parts:
            mapped = _mapped(self.dialect, part, words)
            self.report.parts.append(PartResult(part, mapped, "not tried", why))

    async def run(self) -> DialectReport:
        d = self.dialect
        if not await self.health():
            return self.report
        if not await self.users():
            self.skip([(f"database.{k}", "") for k in DATABASE_COLUMNS], "no users to read")
            return self.report
        await self.reads()
        async with TargetClient(self.target.base_url, self.target.jwt_secret, dialect=d) as c:
            if not await self.auth(c):
                return self.report
            await self.balance(c)
            await self.transfer(c, "tip")
            await self.transfer(c, "deduct")
            await self.purchase(c)
            await self.webhook(c)
        return self.report

    async def health(self) -> bool:
        route = self.dialect.route("health")
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                status = (await client.get(self.target.base_url + route.path)).status_code
        except httpx.HTTPError as exc:
            return self.add("routes.health", str(route), False, f"no answer: {exc}")
        return self.add("routes.health", str(route), status == 200, f"answered {status}")

    async def users(self) -> bool:
        users = [UserSpec(self.fan, grant=GRANT), UserSpec(self.creator, is_creator=True)]
        conn = await asyncpg.connect(self.target.database_url)
        try:
            await create_users(conn, users, self.dialect)
        except asyncpg.PostgresError as exc:
            detail = f"{exc.__class__.__name__}: {exc}"
            self.add("database.create-user", "SQL", False, detail)
            self.add("database.grant", "SQL", False, detail)
            return False
        finally:
            await conn.close()
        self.add("database.create-user", "SQL", True, "created a fan and a creator")
        self.add("database.grant", "SQL", True, f"granted the fan {GRANT}")
        return True

    async def reads(self) -> None:
        ids = [self.fan, self.creator]
        expect: dict[str, Callable[[list[dict[str, Any]]], str | None]] = {
            "users": lambda rows: (
                None
                if {(r["supabase_id"], bool(r["is_creator"])) for r in rows}
                == {(self.fan, False), (self.creator, True)}
                else f"expected the fan and the creator, got {rows}"
            ),
            "balances": lambda rows: (
                None
                if any(r["user_id"] == self.fan and r["balance"] == GRANT for r in rows)
                else f"expected the fan's balance {GRANT}, got {rows}"
            ),
            "ledger": lambda rows: (
                None
                if sum(
                    int(r["tokens"])
                    for r in rows
                    if r["user_id"] == self.fan and r["status"] == "completed"
                )
                == GRANT
                else f"expected completed rows of the fan summing to {GRANT}, got {rows}"
            ),
            "earnings": lambda rows: None,
        }
        conn = await asyncpg.connect(self.target.database_url)
        try:
            for key, columns in DATABASE_COLUMNS.items():
                sql = self.dialect.sql(key) or CONTRACT_SQL[key]
                try:
                    rows = [dict(r) for r in await conn.fetch(sql, ids)]
                except asyncpg.PostgresError as exc:
                    self.add(f"database.{key}", "SQL", False, f"{exc.__class__.__name__}: {exc}")
                    continue
                missing = [c for c in columns if rows and c not in rows[0]]
                if missing:
                    self.add(f"database.{key}", "SQL", False, f"no column {', '.join(missing)}")
                    continue
                wrong = expect[key](rows)
                self.add(f"database.{key}", "SQL", wrong is None, wrong or f"{len(rows)} rows")
            for what in ("ledger", "balances"):
                lock = self.dialect.lock(what)
                try:
                    async with conn.transaction():
                        await conn.execute(lock)
                except asyncpg.PostgresError as exc:
                    detail = f"{exc.__class__.__name__}: {exc}"
                    self.add(f"database.lock-{what}", lock, False, detail)
                else:
                    self.add(f"database.lock-{what}", lock, True, "taken and released")
        finally:
            await conn.close()

    async def auth(self, client: TargetClient) -> bool:
        a = self.dialect.auth
        words = f"{a.header}: {a.scheme + ' ' if a.scheme else ''}<{a.algorithm}, {a.user_claim}>"
        signed = await client.send("balance", self.fan)
        unsigned = await client.send("balance", None)
        if signed.status == 401:
            return self.add("auth", words, False, "a token signed as the dialect says got 401")
        self.add("auth", words, True, f"a signed token got {signed.status}")
        codes = self.dialect.statuses.get("unauthorized", (401,))
        self.add(
            "statuses.unauthorized",
            ", ".join(map(str, codes)),
            unsigned.status == 401,
            f"no token: {unsigned.status}",
            doubtful=True,
        )
        return True

    async def balance(self, client: TargetClient) -> None:
        route = str(self.dialect.route("balance"))
        answer = await client.send("balance", self.fan)
        if self._route("routes.balance", route, answer):
            value = field_value(answer.body, "balance")
            self.add(
                "answers.balance",
                self.dialect.answer_path("balance", "balance"),
                value == GRANT,
                f"balance read as {value!r} (expected {GRANT})",
                doubtful=value is not None,
            )

    async def transfer(self, client: TargetClient, f: str) -> None:
        route = str(self.dialect.route(f))
        context = "live" if f == "tip" else "dialect-check"
        key = f"dialect-check-{f}"
        body = transfer_body(f, self.creator, 1, context=context, key=key)
        answer = await client.send(f, self.fan, body)
        if not self._route(f"routes.{f}", route, answer):
            return
        paths = {k: self.dialect.answer_path(f, k) for k in ("tokensDeducted", "senderBalance")}
        read = {k: field_value(answer.body, k) for k in paths}
        self.add(
            f"answers.{f}",
            ", ".join(f"{k}={v}" for k, v in paths.items()),
            read["tokensDeducted"] == 1 and isinstance(read["senderBalance"], int),
            f"read {read}",
            doubtful=None not in read.values(),
        )
        again = await client.send(f, self.fan, body)
        self.add(
            f"requests.{f}",
            f"key in {self.dialect.request(f).key_in} {self.dialect.request(f).key_name}",
            again.status == 200
            and field_value(again.body, "senderBalance") == read["senderBalance"],
            f"the same key again answered {again.status} with senderBalance "
            f"{field_value(again.body, 'senderBalance')!r} (first {read['senderBalance']!r})",
            doubtful=True,  # or the service ignores keys
        )
        if f == "tip":
            broke = await client.send(
                f, self.fan, transfer_body(f, self.creator, 10**6, context=context)
            )
            codes = self.dialect.statuses.get("insufficient-funds", (402,))
            self.add(
                "statuses.insufficient-funds",
                ", ".join(map(str, codes)),
                broke.status == 402,
                f"a tip beyond the balance answered {broke.status} (read as the contract's)",
                # A 2xx or 5xx is the service's answer to judge; another 4xx, a code
                # the dialect does not map.
                doubtful=not 400 <= broke.status < 500,
            )

    async def purchase(self, client: TargetClient) -> None:
        route = str(self.dialect.route("purchase"))
        before = await self._balance()
        answer = await client.send(
            "purchase", self.fan, purchase_body(100, "pm_card_visa", "dialect-check-buy")
        )
        if not self._route("routes.purchase", route, answer):
            return
        intent = field_value(answer.body, "paymentIntent.id")
        self.add(
            "answers.purchase",
            self.dialect.answer_path("purchase", "paymentIntent.id"),
            isinstance(intent, str) and intent.startswith("pi_"),
            f"paymentIntent.id read as {intent!r}",
            doubtful=intent is not None,
        )
        await asyncio.to_thread(self.target.emulator.wait_settled)
        credited = await _wait_for(lambda: self._credited(before + 100), WITHIN_S)
        after = await self._balance()
        self.add(
            "routes.webhook",
            str(self.dialect.route("webhook")),
            credited,
            f"the succeeded event was delivered; the fan's balance went {before} -> {after}",
            doubtful=True,  # or the service does not credit as the contract says
        )
        state = await asyncio.to_thread(
            self.target.emulator.state, metadata_prefix=("userId", self.fan)
        )
        mine = [i for i in state["intents"] if (i.get("metadata") or {}).get("userId") == self.fan]
        self.add(
            "metadata",
            ", ".join(f"{k}={v}" for k, v in self.dialect.metadata.items()) or "contract names",
            bool(mine) and all("tokenAmount" in i["metadata"] for i in mine),
            f"{len(mine)} intents carry the fan's id under the dialect's userId",
            doubtful=True,  # or the service leaves the contract's metadata out
        )

    async def webhook(self, client: TargetClient) -> None:
        answer = await client.send("webhook", None, content=b'{"id": "evt_check", "type": "ping"}')
        self.add(
            "routes.webhook",
            str(self.dialect.route("webhook")),
            400 <= answer.status < 500 and answer.status not in (404, 405),
            f"an unsigned event answered {answer.status} (expected a 4xx refusal)",
            doubtful=answer.status not in (404, 405),
        )

    def _route(self, part: str, words: str, answer: Answer) -> bool:
        """A route that answered 200. Not found, refused or unreadable: the mapping
        (path, body, token); a 5xx: the service's to answer for."""
        return self.add(
            part, words, answer.status == 200, _said(answer), doubtful=answer.status >= 500
        )

    async def _balance(self) -> int:
        sql = self.dialect.sql("balances") or CONTRACT_SQL["balances"]
        conn = await asyncpg.connect(self.target.database_url)
        try:
            rows = await conn.fetch(sql, [self.fan])
        finally:
            await conn.close()
        return sum(int(r["balance"]) for r in rows if r["user_id"] == self.fan)

    async def _credited(self, expected: int) -> bool:
        return await self._balance() == expected


async def _wait_for(condition: Callable[[], Awaitable[bool]], within: float) -> bool:
    try:
        await wait_until_async(condition, within=within, what="the purchase credited")
    except DeadlineExceeded:
        return False
    return True


def _said(answer: Answer) -> str:
    return f"answered {answer.status} {str(answer.body)[:120]}"


async def check_dialect(target: Target, *, run_id: str) -> DialectReport:
    """Try every part of the target's dialect once (see the module's docstring)."""
    return await _Checker(target, run_id).run()
