"""The Stripe emulator as a process of its own (no GIL shared with the harness)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from harness.emulator.defaults import (
    DEFAULT_API_LATENCY_S,
    DEFAULT_RETRY_DELAYS,
    DEFAULT_WEBHOOK_SECRET,
)
from harness.provisioning.lifecycle import StopsOnExit
from harness.provisioning.local import free_port
from harness.provisioning.processes import ChildProcess
from harness.provisioning.workdirs import run_dir
from harness.target.emulator_client import EmulatorClient

__all__ = ["DEFAULT_RETRY_DELAYS", "DEFAULT_WEBHOOK_SECRET", "EmulatorProcess"]


class EmulatorProcess(StopsOnExit):
    """`python -m harness.emulator` (= `tokenproof stripe-emulator`) on a free port.

    `api_key`: the one key the emulator accepts, the one the harness gives the
    service; None accepts any test key (a service started by someone else).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        seed: int = 0,
        webhook_url: str | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        retry_delays: str = DEFAULT_RETRY_DELAYS,
        api_key: str | None = None,
        api_latency_s: float = DEFAULT_API_LATENCY_S,
        log_dir: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.webhook_secret = webhook_secret
        self.api_key = api_key
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
            "--api-latency",
            str(api_latency_s),
        ]
        if webhook_url:
            argv += ["--webhook-url", webhook_url]
        if api_key:
            argv += ["--api-key", api_key]
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
