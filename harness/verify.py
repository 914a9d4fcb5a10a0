"""The library API behind `tokenproof verify`, the pytest plugin and the benchmarks.

spec = TargetSpec.reference()
with open_target(spec, PostgresSettings.resolve()) as target:
    report = asyncio.run(verify(target, select(["race"]), seed=1))
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

import reference_impl
from harness.errors import SetupError, UsageError
from harness.options import RunOptions
from harness.provisioning import DatabaseFactory, PostgresSettings, make_cluster
from harness.provisioning.emulator import DEFAULT_WEBHOOK_SECRET, EmulatorProcess
from harness.provisioning.service import REFERENCE_COMMAND
from harness.report import RunReport
from harness.runner import ScenarioReport, run_scenario
from harness.scenario import Scenario
from harness.targets import WEBHOOK_PATH, ManagedTarget, Target

REFERENCE_POOL_SIZE = "40"  # room for the gate's 20 waiters plus webhooks


class TargetUnreachable(SetupError):
    """The service at --target-url did not answer GET /health with 200."""


@dataclass(frozen=True)
class TargetSpec:
    kind: str  # "reference", "command" or "url"
    flaw: str | None = None
    command: str | None = None
    cwd: str | None = None
    schema: tuple[Path, ...] = ()
    url: str | None = None
    database_url: str | None = None
    jwt_secret: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    stripe_port: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.kind == "reference":
            return f"reference:{self.flaw}" if self.flaw else "reference"
        if self.kind == "command":
            return f"command: {self.command}"
        return f"url: {self.url}"

    def cli_args(self) -> list[str]:
        """The options that select this target again, for reproduction commands."""
        if self.kind == "reference":
            return ["--target", self.label]
        if self.kind == "command":
            args = ["--target-command", str(self.command)]
            if self.cwd:
                args += ["--target-cwd", self.cwd]
            for schema in self.schema:
                args += ["--target-schema", str(schema)]
            return args
        return [
            "--target-url",
            str(self.url),
            "--database-url",
            "<dsn>",
            "--jwt-secret",
            "<secret>",
            "--webhook-secret",
            "<secret>",
        ]


@contextlib.contextmanager
def open_target(
    spec: TargetSpec,
    postgres: PostgresSettings,
    *,
    seed: int = 0,
    on_info: Callable[[str], None] = lambda _: None,
) -> Iterator[Target]:
    if spec.kind == "url":
        with _external_target(spec, seed, on_info) as target:
            yield target
        return
    if spec.kind == "reference":
        command: str | tuple[str, ...] = REFERENCE_COMMAND
        schema = reference_impl.schema_files()
        env = {"DB_POOL_SIZE": REFERENCE_POOL_SIZE, **spec.extra_env}
        if spec.flaw:
            from harness.flaws import FLAWS

            if spec.flaw not in FLAWS:
                raise UsageError(
                    f"unknown flaw {spec.flaw!r}; choose from {', '.join(sorted(FLAWS))}"
                )
            command = (sys.executable, "-m", "harness.flaws", spec.flaw)
    else:
        assert spec.command is not None
        command, schema, env = spec.command, list(spec.schema), dict(spec.extra_env)
        if spec.cwd is not None and not Path(spec.cwd).is_dir():
            raise UsageError(f"--target-cwd {spec.cwd} is not a directory")
    if postgres.source == "existing":
        on_info("using the existing PostgreSQL server")
    with make_cluster(postgres) as cluster:
        on_info(f"postgres: {cluster.describe()}")
        factory = asyncio.run(DatabaseFactory.open(cluster, schema))
        try:
            managed = ManagedTarget(
                factory, command, name=spec.label, cwd=spec.cwd, extra_env=env, seed=seed
            )
            with managed as target:
                on_info(f"service: {target.base_url} ({spec.label}); stripe: {target.emulator_url}")
                yield target
        finally:
            asyncio.run(factory.close())


@contextlib.contextmanager
def _external_target(
    spec: TargetSpec, seed: int, on_info: Callable[[str], None]
) -> Iterator[Target]:
    assert spec.url is not None
    if not spec.database_url or not spec.jwt_secret:
        raise UsageError("--target-url needs --database-url and --jwt-secret too")
    url = spec.url.rstrip("/")
    try:
        healthy = httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.HTTPError as exc:
        raise TargetUnreachable(
            f"cannot reach {url}/health: {exc}; is the service running?"
        ) from exc
    if not healthy:
        raise TargetUnreachable(f"{url}/health did not answer 200; start the service first")

    async def check_db() -> None:
        conn = await asyncpg.connect(spec.database_url, timeout=10)
        await conn.close()

    try:
        asyncio.run(check_db())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise SetupError(f"cannot connect to the target's database: {exc}") from exc
    with EmulatorProcess(
        port=spec.stripe_port,
        seed=seed,
        webhook_url=f"{url}{WEBHOOK_PATH}",
        webhook_secret=spec.webhook_secret,
    ) as emulator:
        on_info(
            f"stripe emulator at {emulator.url}: the service must use "
            f"STRIPE_API_BASE={emulator.url} STRIPE_WEBHOOK_SECRET={spec.webhook_secret}"
        )
        yield Target(
            name=spec.label,
            base_url=url,
            database_url=spec.database_url,
            jwt_secret=spec.jwt_secret,
            webhook_secret=spec.webhook_secret,
            emulator=emulator.control,
            emulator_url=emulator.url,
        )


async def verify(
    target: Target,
    scenarios: list[Scenario],
    *,
    seed: int,
    spec: TargetSpec | None = None,
    run_id: str | None = None,
    options: RunOptions | None = None,
    on_start: Callable[[Scenario], None] = lambda _: None,
    on_done: Callable[[ScenarioReport], None] = lambda _: None,
) -> RunReport:
    run_id = run_id or secrets.token_hex(3)
    reports = []
    for item in scenarios:
        on_start(item)
        report = await run_scenario(target, item, seed=seed, run_id=run_id, options=options)
        reports.append(report)
        on_done(report)
    command = (spec or TargetSpec("reference")).cli_args() + (options or RunOptions()).cli_args()
    return RunReport(target.name, seed, run_id, reports, command)
