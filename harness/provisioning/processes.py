"""Child processes the harness owns: started in their own session, stopped in order."""

from __future__ import annotations

import contextlib
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


def group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid` (zombies do not count: they hold
    no files and answer no connections)."""
    members: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def wait_group_gone(pgid: int, *, within: float = 10.0) -> None:
    """Wait until every process of the group has exited; SIGKILL what is left.

    The leader exiting is not the end: PostgreSQL's backends, a service's
    workers or Locust's worker processes may still run (and write into a
    folder we are about to delete). Our children start sessions of their own,
    so the group is exactly what they started; Linux hands out no new pid
    equal to a process group id still in use, so the group cannot be confused
    with a newcomer.
    """
    try:
        wait_until(lambda: not group_members(pgid), within=within, what=f"group {pgid} exit")
        return
    except DeadlineExceeded:
        pass
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    # Unkillable (D state) if it is still there: the caller's cleanup retries
    # and says so.
    with contextlib.suppress(DeadlineExceeded):
        wait_until(lambda: not group_members(pgid), within=5.0, what=f"group {pgid} exit")


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

    def stop(self, *, grace_s: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        # SIGTERM lets servers finish in-flight requests; SIGKILL the group if not.
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            if process.poll() is not None:
                break
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        # Children of the leader (a shell's command, a server's workers) may
        # outlive it for a moment, or ignore SIGTERM: leave none behind.
        wait_group_gone(process.pid, within=5.0)

    def kill(self) -> None:
        """The abrupt end a fault wants: no grace."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            wait_group_gone(self.process.pid)
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])
