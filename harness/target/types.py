"""`Target`: what scenarios see of a running service (its URL, its database, its
secrets, the Stripe emulator it pays through, and, when tokenproof started it,
the process it supervises). A leaf: `harness.target.start` starts targets, and
`harness.target.preflight` checks them, both from here."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from harness.dialect.model import CONTRACT, Dialect
from harness.target.emulator_client import EmulatorClient
from harness.target.spec import SettlePolicy
from harness.waiting import DeadlineExceeded, wait_until_async

WEBHOOK_PATH = CONTRACT.route("webhook").path


class SupervisedService(Protocol):
    """A service tokenproof started, as a process or a container: what the runner
    supervises and the faults suite kills and starts again."""

    @property
    def url(self) -> str: ...

    def start(self, within: float = ...) -> object: ...
    def alive(self) -> bool: ...
    def exit_code(self) -> int | None: ...
    def log_tail(self, lines: int = ...) -> str: ...
    def kill(self) -> None: ...
    def restart(self, within: float = ...) -> None: ...
    def cleanup(self) -> None: ...


@dataclass(frozen=True)
class ServiceCrash:
    how: str  # "exit code 1", "signal SIGKILL"
    log_tail: str


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    database_url: str
    jwt_secret: str
    webhook_secret: str
    emulator: EmulatorClient
    emulator_url: str
    # Only for targets tokenproof started: supervised, and the faults that end
    # and restart it.
    process: SupervisedService | None = None
    # The PostgreSQL server's log when tokenproof started the server: its error
    # messages are internal text a 5xx must not carry.
    server_log: Path | None = None
    # Its settle deadline and the lag it has shown (mutable: learned as it runs).
    settle: SettlePolicy = field(default_factory=SettlePolicy, compare=False)
    # The service's own words for the contract (docs/dialects.md).
    dialect: Dialect = CONTRACT

    def crash_report(self) -> ServiceCrash | None:
        """How the started service ended, if it exited without being asked to."""
        if self.process is None:
            return None
        code = self.process.exit_code()
        if code is None:
            return None
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return ServiceCrash(how, self.process.log_tail(30))

    async def answers(self, within: float = 5.0) -> bool:
        """Its health route answers 200 within `within` seconds."""
        async with httpx.AsyncClient(timeout=2.0) as client:

            async def healthy() -> bool:
                try:
                    health = self.base_url + self.dialect.route("health").path
                    return (await client.get(health)).status_code == 200
                except httpx.HTTPError:
                    return False

            try:
                await wait_until_async(healthy, within=within, what="GET /health", interval=0.1)
            except DeadlineExceeded:
                return False
        return True

    def ensure_running(self) -> bool:
        """Start the service again if it died in an earlier scenario, so that one
        crash does not fail every scenario after it. True when it did."""
        if self.process is not None and not self.process.alive():
            self.process.restart()
            return True
        return False
