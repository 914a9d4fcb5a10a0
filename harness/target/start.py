"""Running targets: `open_target` turns a `TargetSpec` (harness.target.spec)
into a `Target`, what scenarios see (the service's URL, its database, its
secrets, and the Stripe emulator it pays through), and stops everything on
the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import asyncpg
import httpx

import reference_impl
from harness.dialect.model import CONTRACT, Dialect
from harness.errors import SetupError, UsageError
from harness.provisioning import (
    DatabaseFactory,
    FreshDatabase,
    PostgresSettings,
    make_cluster,
)
from harness.provisioning.container import ServiceContainer, check_image
from harness.provisioning.emulator import (
    DEFAULT_RETRY_DELAYS,
    DEFAULT_WEBHOOK_SECRET,
    EmulatorProcess,
)
from harness.provisioning.lifecycle import StopsOnExit
from harness.provisioning.local import free_port
from harness.provisioning.processes import ProcessStartFailed
from harness.provisioning.service import REFERENCE_COMMAND, ServiceEnv, ServiceProcess
from harness.target.spec import (
    DEFAULT_SETTLE_TIMEOUT_S,
    DEFAULT_START_TIMEOUT_S,
    SettlePolicy,
    TargetSpec,
)
from harness.target.types import WEBHOOK_PATH, ServiceCrash, SupervisedService, Target

__all__ = [
    "WEBHOOK_PATH",
    "ServiceCrash",
    "SupervisedService",
    "Target",
    "TargetSpec",
    "open_target",
]
START_ATTEMPTS = 3


class ManagedTarget(StopsOnExit):
    """A fresh database, an emulator process and the service process (or, with
    `image`, its container), started and stopped together (`with`); a failure
    while starting stops what had started."""

    def __init__(
        self,
        factory: DatabaseFactory,
        command: Sequence[str] | str = REFERENCE_COMMAND,
        *,
        name: str = "reference",
        cwd: str | Path | None = None,
        extra_env: dict[str, str] | None = None,
        seed: int = 0,
        retry_delays: str = DEFAULT_RETRY_DELAYS,
        log_path: Path | None = None,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        settle_timeout_s: float = DEFAULT_SETTLE_TIMEOUT_S,
        image: str | None = None,
        dialect: Dialect = CONTRACT,
    ) -> None:
        self.factory = factory
        self.dialect = dialect
        # One policy for every Target this hands out: what one scenario learns of
        # the service's lag holds for the next.
        self.settle = SettlePolicy(settle_timeout_s)
        self.image = image
        self.start_timeout_s = start_timeout_s
        self.command = command
        self.name = name
        self.cwd = cwd
        self.extra_env = extra_env or {}
        self.seed = seed
        self.retry_delays = retry_delays
        self.log_path = log_path
        self.jwt_secret = secrets.token_urlsafe(24)
        self.webhook_secret = DEFAULT_WEBHOOK_SECRET
        self.database: FreshDatabase | None = None
        self.emulator: EmulatorProcess | None = None
        self.service: SupervisedService | None = None

    def start(self) -> Target:
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._start()
            except ProcessStartFailed as exc:
                # Another process may have taken the free port we picked before
                # the service bound it (parallel test workers do): try again.
                # Any other failure is the service's own, and final.
                if attempt == START_ATTEMPTS or "address already in use" not in exc.log_tail:
                    raise
        raise AssertionError("unreachable")

    def _start(self) -> Target:
        try:
            self.database = asyncio.run(self.factory.create())
            service_port = free_port()
            self.emulator = EmulatorProcess(
                seed=self.seed,
                webhook_url=f"http://127.0.0.1:{service_port}{self.dialect.route('webhook').path}",
                webhook_secret=self.webhook_secret,
                retry_delays=self.retry_delays,
                api_key=ServiceEnv.stripe_secret_key,  # the key the service is given below
            ).start()
            env = ServiceEnv(
                database_url=self.database.dsn,
                jwt_secret=self.jwt_secret,
                stripe_api_base=self.emulator.url,
                stripe_webhook_secret=self.webhook_secret,
            )
            log_path = self.log_path
            if self.image is not None:
                # Held before it starts: a container whose start fails (or is
                # interrupted) exists on the engine and stop() must remove it.
                self.service = ServiceContainer(
                    self.image,
                    env,
                    port=service_port,
                    extra_env=self.extra_env,
                    log_path=log_path,
                    health_path=self.dialect.route("health").path,
                )
                self.service.start(self.start_timeout_s)
                return self.target
            self.service = ServiceProcess(
                self.command,
                env,
                port=service_port,
                cwd=self.cwd,
                extra_env=self.extra_env,
                log_path=log_path,
                health_path=self.dialect.route("health").path,
            ).start(self.start_timeout_s)
        except BaseException:
            # Includes Ctrl-C while starting: leave nothing running.
            self.stop()
            raise
        return self.target

    @property
    def target(self) -> Target:
        assert self.database and self.emulator and self.service, "start() first"
        return Target(
            name=self.name,
            base_url=self.service.url,
            database_url=self.database.dsn,
            jwt_secret=self.jwt_secret,
            webhook_secret=self.webhook_secret,
            emulator=self.emulator.control.speaking(self.dialect.metadata),
            emulator_url=self.emulator.url,
            process=self.service,
            server_log=self.factory.server_log,
            settle=self.settle,
            dialect=self.dialect,
        )

    def stop(self) -> None:
        service, self.service = self.service, None
        emulator, self.emulator = self.emulator, None
        database, self.database = self.database, None
        if service is not None:
            service.cleanup()
        if emulator is not None:
            emulator.stop()
        if database is not None:
            asyncio.run(self.factory.drop(database.name))

    def __enter__(self) -> Target:
        return self.start()


class TargetUnreachable(SetupError):
    """The service at --target-url did not answer GET /health with 200."""


@contextlib.contextmanager
def open_target(
    spec: TargetSpec,
    postgres: PostgresSettings,
    *,
    seed: int = 0,
    on_info: Callable[[str], None] = lambda _: None,
    log_dir: Path | None = None,
    preflight: bool = True,
) -> Iterator[Target]:
    """The running target, stopped on the way out (also on errors and Ctrl-C).

    `log_dir`: keep the started service's output there as `service.log` (else in
    a temporary file, removed afterwards). The preflight (harness.target.preflight) runs
    before the target is handed out."""
    from harness.target.preflight import preflight as check

    with _running_target(spec, postgres, seed, on_info, log_dir) as target:
        if preflight:
            asyncio.run(check(target, run_id=secrets.token_hex(3)))
        yield target


@contextlib.contextmanager
def _running_target(
    spec: TargetSpec,
    postgres: PostgresSettings,
    seed: int,
    on_info: Callable[[str], None],
    log_dir: Path | None,
) -> Iterator[Target]:
    if spec.kind == "url":
        with _external_target(spec, seed, on_info) as target:
            yield target
        return
    if spec.kind == "reference":
        command: str | tuple[str, ...] = REFERENCE_COMMAND
        schema = reference_impl.schema_files()
        env = dict(spec.extra_env)
        if spec.flaw:
            from harness.flaws import FLAWS

            if spec.flaw not in FLAWS:
                raise UsageError(
                    f"unknown flaw {spec.flaw!r}; choose from {', '.join(sorted(FLAWS))}"
                )
            command = (sys.executable, "-m", "harness.flaws", spec.flaw)
    elif spec.kind == "image":
        assert spec.image is not None
        command, schema, env = (), list(spec.schema), dict(spec.extra_env)
        # Before PostgreSQL starts: no daemon or no image fails in a second.
        check_image(spec.image, pull=spec.pull)
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
                factory,
                command,
                name=spec.label,
                cwd=spec.cwd,
                extra_env=env,
                seed=seed,
                log_path=None if log_dir is None else log_dir / "service.log",
                start_timeout_s=spec.start_timeout_s,
                settle_timeout_s=spec.settle_timeout_s,
                dialect=spec.dialect,
                image=spec.image,  # checked, and pulled if asked, by check_image
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
    health = url + spec.dialect.route("health").path
    try:
        healthy = httpx.get(health, timeout=5).status_code == 200
    except httpx.HTTPError as exc:
        raise TargetUnreachable(f"cannot reach {health}: {exc}; is the service running?") from exc
    if not healthy:
        raise TargetUnreachable(f"{health} did not answer 200; start the service first")

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
        webhook_url=f"{url}{spec.dialect.route('webhook').path}",
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
            emulator=emulator.control.speaking(spec.dialect.metadata),
            emulator_url=emulator.url,
            settle=SettlePolicy(spec.settle_timeout_s),
            dialect=spec.dialect,
        )
