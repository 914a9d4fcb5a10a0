"""The Stripe emulator as a process of its own (no GIL shared with the harness)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType

import httpx

from harness.emulator_client import EmulatorClient
from harness.provisioning.local import free_port
from harness.provisioning.processes import ChildProcess
from harness.provisioning.workdirs import run_dir

DEFAULT_WEBHOOK_SECRET = "whsec_tokenproof_test_secret"


class EmulatorProcess:
    def __init__(
        self,
        *,
        port: int | None = None,
        seed: int = 0,
        webhook_url: str | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        retry_delays: str = "0.05,0.2,0.5,1,2",
        log_dir: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.webhook_secret = webhook_secret
        argv = [
            sys.executable,
            "-m",
            "harness.emulator",
            "--port",
            str(self.port),
            "--seed",
            str(seed),
            "--webhook-secret",
            webhook_secret,
            "--retry-delays",
            retry_delays,
        ]
        if webhook_url:
            argv += ["--webhook-url", webhook_url]
        # The run's own temp folder: deleted when the run ends, and by the next
        # run's janitor if this one is killed.
        log_dir = log_dir or run_dir()
        self._child = ChildProcess(
            "stripe emulator", argv, log_path=log_dir / f"tokenproof-emulator-{self.port}.log"
        )
        self.control = EmulatorClient(self.url)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmulatorProcess:
        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/_control/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self._child.start(healthy, within=30)
        return self

    def stop(self) -> None:
        self.control.close()
        self._child.stop()
        self._child.log_path.unlink(missing_ok=True)

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
