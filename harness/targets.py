"""Ways to reach a service that speaks the target contract.

A `Target` is what scenarios see: the service's URL, its database, its
secrets, and the Stripe emulator it pays through.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from harness.emulator_client import EmulatorClient
from harness.provisioning import DatabaseFactory, FreshDatabase
from harness.provisioning.emulator import DEFAULT_WEBHOOK_SECRET, EmulatorProcess
from harness.provisioning.local import free_port
from harness.provisioning.processes import ProcessStartFailed
from harness.provisioning.service import REFERENCE_COMMAND, ServiceEnv, ServiceProcess

WEBHOOK_PATH = "/api/payments/webhook"
START_ATTEMPTS = 3


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    database_url: str
    jwt_secret: str
    webhook_secret: str
    emulator: EmulatorClient
    emulator_url: str
    # Only for targets tokenproof started: the faults that end and restart it.
    process: ServiceProcess | None = None


class ManagedTarget:
    """A fresh database, an emulator process and the service process, started and
    stopped together (`with`); a failure while starting stops what had started."""

    def __init__(
        self,
        factory: DatabaseFactory,
        command: Sequence[str] | str = REFERENCE_COMMAND,
        *,
        name: str = "reference",
        cwd: str | Path | None = None,
        extra_env: dict[str, str] | None = None,
        seed: int = 0,
        retry_delays: str = "0.05,0.2,0.5,1,2",
    ) -> None:
        self.factory = factory
        self.command = command
        self.name = name
        self.cwd = cwd
        self.extra_env = extra_env or {}
        self.seed = seed
        self.retry_delays = retry_delays
        self.jwt_secret = secrets.token_urlsafe(24)
        self.webhook_secret = DEFAULT_WEBHOOK_SECRET
        self.database: FreshDatabase | None = None
        self.emulator: EmulatorProcess | None = None
        self.service: ServiceProcess | None = None

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
                webhook_url=f"http://127.0.0.1:{service_port}{WEBHOOK_PATH}",
                webhook_secret=self.webhook_secret,
                retry_delays=self.retry_delays,
                api_key=ServiceEnv.stripe_secret_key,  # the key the service is given below
            ).start()
            self.service = ServiceProcess(
                self.command,
                ServiceEnv(
                    database_url=self.database.dsn,
                    jwt_secret=self.jwt_secret,
                    stripe_api_base=self.emulator.url,
                    stripe_webhook_secret=self.webhook_secret,
                ),
                port=service_port,
                cwd=self.cwd,
                extra_env=self.extra_env,
            ).start()
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
            emulator=self.emulator.control,
            emulator_url=self.emulator.url,
            process=self.service,
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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
