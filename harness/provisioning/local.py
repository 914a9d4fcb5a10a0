"""A throwaway PostgreSQL server: initdb into a temporary folder, serve on loopback TCP.

The server is a child process we own from start to stop. It listens on
127.0.0.1 only (services under test in any language need TCP, not just a
socket), uses password authentication with a fresh random password, and trades
durability for speed (`fsync=off`): its data is thrown away when it stops.

Its folder (`tokenproof-pg-*` in the temp folder) is locked by this process
(see workdirs.py); `stop()` deletes it once the server and every one of its
processes is gone, and says so if it cannot. Before a server starts, the
janitor deletes the folders of earlier runs whose process and server are gone
(a run killed with SIGKILL runs no cleanup of its own).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from harness.provisioning.binaries import PostgresBinaries, runnable_by
from harness.provisioning.errors import PortInUse, ProvisioningError, ServerStartFailed
from harness.provisioning.lifecycle import StopsOnExit
from harness.provisioning.osuser import OsUser, server_user
from harness.provisioning.processes import die_with_parent, family, wait_gone
from harness.provisioning.workdirs import PG_PREFIX, OwnedDir, sweep

SUPERUSER = "postgres"
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 15.0
AUTO_PORT_ATTEMPTS = 3
# Settings for a disposable test server: fast, and roomy enough for load runs.
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "unix_socket_directories": "",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "deadlock_timeout": "100ms",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class LocalPostgres(StopsOnExit):
    """Start with `start()` or as a context manager; `stop()` is idempotent."""

    def __init__(
        self,
        binaries: PostgresBinaries,
        *,
        port: int | None = None,
        settings: dict[str, str] | None = None,
        workdir_parent: Path | None = None,
    ) -> None:
        self._requested_port = port
        self._settings = {**SERVER_SETTINGS, **(settings or {})}
        self._workdir_parent = workdir_parent
        self._os_user: OsUser | None = server_user()
        self.binaries = runnable_by(binaries, self._os_user)
        self.password = secrets.token_urlsafe(18)
        self.port: int | None = None
        self.workdir: Path | None = None
        self.swept: list[Path] = []  # folders of gone runs the janitor deleted at start
        self._owned: OwnedDir | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    # -- public ----------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        if self.workdir is None:
            raise ProvisioningError("the server has not been started; call start() first")
        return self.workdir / "data"

    def server_log(self) -> Path | None:
        return self.log_path if self.workdir is not None else None

    @property
    def log_path(self) -> Path:
        if self.workdir is None:
            raise ProvisioningError("the server has not been started; call start() first")
        return self.workdir / "server.log"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def admin_dsn(self) -> str:
        return self.dsn("postgres")

    def dsn(self, database: str) -> str:
        if self.port is None:
            raise ProvisioningError("the server has not been started; call start() first")
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def describe(self) -> str:
        return (
            f"{self.binaries.origin} PostgreSQL on 127.0.0.1:{self.port} (data in {self.workdir})"
        )

    def start(self) -> None:
        if self._process is not None:
            raise ProvisioningError("this server is already running; stop() it first")
        if self._requested_port is not None and not port_is_free(self._requested_port):
            raise PortInUse(self._requested_port)
        self.swept = sweep(self._workdir_parent)
        try:
            self._init_data_dir()
            attempts = 1 if self._requested_port is not None else AUTO_PORT_ATTEMPTS
            for attempt in range(attempts):
                port = self._requested_port or free_port()
                try:
                    self._launch(port)
                    return
                except ServerStartFailed:
                    # Someone may have taken the free port between our check and
                    # the server's bind: try another. Any other failure is final.
                    raced = self._requested_port is None and not port_is_free(port)
                    if not raced or attempt == attempts - 1:
                        raise
            raise AssertionError("unreachable")
        except BaseException:
            # Includes KeyboardInterrupt during start: never leave a half-started
            # server or its folder behind.
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            # After an immediate shutdown or a kill, the backends may still be
            # exiting and writing into the folder: note them now (once the
            # postmaster is gone they are nobody's children) and delete the
            # folder only when they are all gone.
            server = family(process.pid)
            if process.poll() is None:
                _terminate(process)
            wait_gone(server | family(process.pid))
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        owned, self._owned = self._owned, None
        self.workdir = None
        self.port = None
        if owned is not None:
            owned.remove()  # retries; warns (FolderLeftBehind) if it cannot

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    # -- internals ---------------------------------------------------------------

    def _run_as_server_user(self) -> dict[str, Any]:
        if self._os_user is None:
            return {}
        return {
            "user": self._os_user.uid,
            "group": self._os_user.gid,
            "extra_groups": [],
        }

    def _init_data_dir(self) -> None:
        self._owned = OwnedDir.create(PG_PREFIX, self._workdir_parent)
        self.workdir = self._owned.path
        if self._os_user is not None:
            os.chown(self.workdir, self._os_user.uid, self._os_user.gid)
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._os_user is not None:
            os.chown(pwfile, self._os_user.uid, self._os_user.gid)
        pwfile.chmod(0o600)
        result = subprocess.run(
            [
                str(self.binaries.path("initdb")),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            cwd=self.workdir,
            **self._run_as_server_user(),
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise ServerStartFailed(
                f"initdb failed (exit {result.returncode}) with {self.binaries.bin_dir}",
                _tail(result.stdout + result.stderr),
            )

    def _launch(self, port: int) -> None:
        argv = [
            str(self.binaries.path("postgres")),
            "-D",
            str(self.data_dir),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
        ]
        for key, value in self._settings.items():
            argv += ["-c", f"{key}={value}"]
        if self._log_file is None:
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        pidfile = self.data_dir / "postmaster.pid"
        pidfile.unlink(missing_ok=True)
        # A session of its own: a Ctrl-C in the terminal reaches us, not the
        # server, so we stop it in order instead of racing its own shutdown.
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
            # See processes.py: PDEATHSIG follows the forking thread.
            # SIGINT: PostgreSQL's fast shutdown. Armed after the switch to the
            # server user, so the setting survives it.
            preexec_fn=die_with_parent(signal.SIGINT)
            if threading.current_thread() is threading.main_thread()
            else None,
            **self._run_as_server_user(),
        )
        self.port = port
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise ServerStartFailed(
                    f"postgres exited with code {code} before accepting connections",
                    self._read_log_tail(),
                )
            if _postmaster_status(pidfile) == "ready":
                return
            time.sleep(0.01)  # polling a condition, bounded by the deadline
        raise ServerStartFailed(
            f"postgres did not become ready within {START_DEADLINE_S:.0f} s",
            self._read_log_tail(),
        )

    def _read_log_tail(self) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"))
        except OSError:
            return "(no log written)"


def _postmaster_status(pidfile: Path) -> str | None:
    # Line 8 of postmaster.pid is the postmaster's status; "ready" is what
    # pg_ctl waits for too.
    try:
        lines = pidfile.read_text().splitlines()
    except OSError:
        return None
    return lines[7].strip() if len(lines) > 7 else None


def _terminate(process: subprocess.Popen[bytes]) -> None:
    # SIGINT is PostgreSQL's fast shutdown (disconnect clients, checkpoint);
    # SIGQUIT its immediate shutdown; SIGKILL the last resort.
    for sig, wait_s in (
        (signal.SIGINT, STOP_DEADLINE_S),
        (signal.SIGQUIT, 5.0),
        (signal.SIGKILL, 5.0),
    ):
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty)"
