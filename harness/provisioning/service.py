"""The service under test as a real process with the contract's environment."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.provisioning.local import free_port
from harness.provisioning.processes import ChildProcess
from harness.provisioning.workdirs import run_dir

REFERENCE_COMMAND = (sys.executable, "-m", "reference_impl")


@dataclass(frozen=True)
class ServiceEnv:
    database_url: str
    jwt_secret: str
    stripe_api_base: str
    stripe_webhook_secret: str
    stripe_secret_key: str = "sk_test_tokenproof"

    def as_env(self, port: int) -> dict[str, str]:
        return {
            "PORT": str(port),
            "DATABASE_URL": self.database_url,
            "JWT_SECRET": self.jwt_secret,
            "STRIPE_SECRET_KEY": self.stripe_secret_key,
            "STRIPE_API_BASE": self.stripe_api_base,
            "STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
        }


class ServiceProcess:
    """Starts `command` (argv, or a shell string) and waits for its health route
    (GET /health, or the dialect's) to answer 200."""

    def __init__(
        self,
        command: Sequence[str] | str,
        env: ServiceEnv,
        *,
        port: int | None = None,
        cwd: str | Path | None = None,
        extra_env: dict[str, str] | None = None,
        log_path: Path | None = None,
        health_path: str = "/health",
    ) -> None:
        """`log_path`: where its stdout and stderr go, kept after it stops (a report
        folder's service.log); by default a temporary file removed by cleanup()."""
        self.port = port or free_port()
        self.health_path = health_path
        argv = ["/bin/sh", "-c", f"exec {command}"] if isinstance(command, str) else list(command)
        self.command = command if isinstance(command, str) else shlex.join(command)
        full_env = {**os.environ, **(extra_env or {}), **env.as_env(self.port)}
        self._keep_log = log_path is not None
        if log_path is None:
            # The run's own temp folder: deleted when the run ends, and by the
            # next run's janitor if this one is killed.
            log_path = run_dir() / f"tokenproof-service-{self.port}.log"
        else:
            log_path.parent.mkdir(parents=True, exist_ok=True)
        self._child = ChildProcess(
            "service under test",
            argv,
            log_path=log_path,
            env=full_env,
            cwd=cwd,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._child.pid

    def start(self, within: float = 60.0) -> ServiceProcess:
        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}{self.health_path}", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self._child.start(healthy, within=within)
        return self

    def stop(self) -> None:
        self._child.stop()

    def alive(self) -> bool:
        return self._child.alive()

    def exit_code(self) -> int | None:
        """Its exit code (negative: the signal) if it ended without our asking."""
        return self._child.ended_by_itself()

    def kill(self) -> None:
        self._child.kill()

    def restart(self, within: float = 60.0) -> None:
        self._child.stop()
        self.start(within)

    def log_tail(self, lines: int = 30) -> str:
        return self._child.log_tail(lines)

    def cleanup(self) -> None:
        self._child.close()
        if not self._keep_log:
            self._child.log_path.unlink(missing_ok=True)
