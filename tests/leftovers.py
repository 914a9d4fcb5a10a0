"""Test helpers that look at the machine the way a user would after a run:
which processes are left, what they listen on, what folders remain."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Listener:
    pid: int
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.address).is_loopback


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def descendants(root: int) -> set[int]:
    """Live processes below `root` (not root itself)."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        stat = _stat(pid)
        if stat is not None and stat[0] not in ("Z", "X"):
            children.setdefault(stat[1], []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def processes_with_env(name: str, value: str) -> set[int]:
    """Live processes whose environment has name=value: every process a run
    started inherits the run's environment, whoever its parent is now."""
    wanted = f"{name}={value}".encode()
    found: set[int] = set()
    for pid in _all_pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        stat = _stat(pid)
        if wanted in env and stat is not None and stat[0] not in ("Z", "X"):
            found.add(pid)
    return found


def _decode(hex_address: str) -> tuple[str, int]:
    address, port = hex_address.split(":")
    raw = bytes.fromhex(address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)
    # /proc/net/tcp6 stores the address as four host-order 32-bit words.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words), int(port, 16)


def _listening_inodes() -> dict[int, tuple[str, int]]:
    inodes: dict[int, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                inodes[int(fields[9])] = _decode(fields[1])
    return inodes


def listeners(pids: set[int]) -> list[Listener]:
    """Every listening TCP socket (v4 and v6) any of `pids` holds."""
    inodes = _listening_inodes()
    found: list[Listener] = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in inodes:
                    found.append(Listener(pid, *inodes[inode]))
    return found


def entries(folder: Path, prefix: str = "") -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.startswith(prefix)}


@contextmanager
def server_reachable_tmpdir() -> Iterator[Path]:
    """A private temp folder the PostgreSQL server user can pass through.

    pytest's tmp_path lies under a 0700 folder: when tests run as root the
    server runs as an unprivileged user who could not reach its data there.
    """
    path = Path(tempfile.mkdtemp(prefix="tp-test-tmp-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
