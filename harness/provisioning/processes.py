"""Child processes the harness owns: started in their own session, stopped in order."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.provisioning.errors import ProvisioningError
from harness.waiting import DeadlineExceeded, wait_until

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A preexec_fn: the kernel sends the child `sig` when the forking thread dies,
    even by SIGKILL, which runs no cleanup of ours."""

    def arm() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)

    return arm


class ProcessStartFailed(ProvisioningError):
    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"{message}\n--- last lines of its output ---\n{log_tail}")
        self.log_tail = log_tail


class ChildProcess:
    """A process whose output goes to a log file; `stop()` is idempotent."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready: Callable[[], bool], *, within: float = 60.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            # PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the
            # process: from a worker thread (asyncio.to_thread) the child would be
            # killed when the pool retires that thread. Only the main thread lives
            # as long as we do; elsewhere stop() is the only cleanup.
            on_main = threading.current_thread() is threading.main_thread()
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=die_with_parent() if on_main else None,
            )
        except OSError as exc:
            raise ProcessStartFailed(f"cannot start {self.name}: {exc}", "") from exc
        finally:
            log.close()  # the child holds its own descriptor
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                raise ProcessStartFailed(
                    f"{self.name} exited with code {process.returncode} before it was ready",
                    self.log_tail(),
                )
            return ready()

        try:
            wait_until(up, within=within, what=f"{self.name} ready")
        except DeadlineExceeded as exc:
            self.stop()
            raise ProcessStartFailed(
                f"{self.name} was not ready within {within:g} s", self.log_tail()
            ) from exc
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ended_by_itself(self) -> int | None:
        """The exit code if the process ended while we still held it: `stop()` and
        `kill()` let go of it, so a code here means nobody asked it to end."""
        return self.process.poll() if self.process is not None else None

    def stop(self, *, grace_s: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # SIGTERM lets servers finish in-flight requests; SIGKILL the group if not.
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue

    def kill(self) -> None:
        """The abrupt end a fault wants: no grace."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])
