"""Child processes the harness owns: started in their own session, stopped in order."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.provisioning.errors import ProvisioningError
from harness.waiting import DeadlineExceeded, wait_until

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessId:
    """A process as it was when seen: a pid that is reused later names another
    process, with another start time."""

    pid: int
    started: int  # clock ticks after boot (/proc/PID/stat field 22)


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat fields from the state on, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _live(fields: list[str] | None) -> bool:
    return fields is not None and fields[0] not in ("Z", "X")


def process_id(pid: int) -> ProcessId | None:
    """The process `pid` names now, or None once it is gone (zombies do not count:
    they hold no files and answer no connections)."""
    fields = _stat(pid)
    return ProcessId(pid, int(fields[19])) if _live(fields) and fields is not None else None


def is_running(process: ProcessId) -> bool:
    return process_id(process.pid) == process


def family(pid: int) -> set[ProcessId]:
    """`pid`, its descendants and the members of its process group, as they run now.

    Both, because each misses some: PostgreSQL's backends start sessions of
    their own (so signalling a backend reaches its group), and a child whose
    parent has exited is no longer anyone's descendant.
    """
    table: dict[int, list[str]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if _live(fields) and fields is not None:
                table[int(entry.name)] = fields
    children: dict[int, list[int]] = {}
    for child, fields in table.items():
        children.setdefault(int(fields[1]), []).append(child)
    found = {p for p, fields in table.items() if int(fields[2]) == pid}
    todo = [pid] if pid in table else []
    while todo:
        current = todo.pop()
        found.add(current)
        todo += [c for c in children.get(current, []) if c not in found]
    return {ProcessId(p, int(table[p][19])) for p in found}


def end_group(process: subprocess.Popen[bytes], *, grace_s: float) -> None:
    """Stop `process` and its process group: SIGTERM lets servers finish in-flight
    requests, SIGKILL follows after `grace_s`. Children of the leader (a shell's
    command, a server's workers) may outlive it for a moment, or ignore SIGTERM:
    wait until none is left."""
    started = family(process.pid)
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
    wait_gone(started | family(process.pid), within=5.0)


def wait_gone(processes: set[ProcessId], *, within: float = 10.0) -> None:
    """Wait until every one of `processes` has exited; SIGKILL what is left.

    A leader exiting is not the end: PostgreSQL's backends, a service's workers
    or Locust's worker processes may still run (and write into a folder we are
    about to delete, or hold a port).
    """

    def none_left() -> bool:
        return not any(is_running(p) for p in processes)

    try:
        wait_until(none_left, within=within, what="processes exit", interval=0.02)
        return
    except DeadlineExceeded:
        pass
    for process in processes:
        if is_running(process):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
    # Unkillable (D state) if one is still there: the caller's cleanup retries
    # and says so.
    with contextlib.suppress(DeadlineExceeded):
        wait_until(none_left, within=5.0, what="processes exit after SIGKILL")


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A preexec_fn: the kernel sends the child `sig` when the forking thread dies,
    even by SIGKILL, which runs no cleanup of ours."""

    def arm() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)

    return arm


class ProcessClosed(ProvisioningError):
    """start() after close(): the run is ending."""


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
        # A supervisor thread may restart the process while the main thread closes
        # it on the way out (SIGTERM, Ctrl-C): after close(), nothing starts it.
        self._lock = threading.Lock()
        self._closed = False

    def start(self, ready: Callable[[], bool], *, within: float = 60.0) -> None:
        with self._lock:
            if self._closed:
                raise ProcessClosed(f"{self.name} was closed; it is not started again")
            self._spawn()
        process = self.process
        assert process is not None

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

    def close(self) -> None:
        """Stop it for good: a start() after this raises ProcessClosed."""
        with self._lock:
            self._closed = True
        self.stop()

    def _spawn(self) -> None:
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
        with self._lock:
            process, self.process = self.process, None
        if process is None:
            return
        end_group(process, grace_s=grace_s)

    def kill(self) -> None:
        """The abrupt end a fault wants: no grace."""
        if self.process is not None and self.process.poll() is None:
            started = family(self.process.pid)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            wait_gone(started | family(self.process.pid))
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])
