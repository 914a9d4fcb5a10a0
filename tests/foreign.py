"""Foreign services (`foreign/*`): services tokenproof did not write, in other
stacks, each correct by default with defects behind `TOKENPROOF_DEFECT`.

Each installs its dependencies as its team would (npm ci from the lockfile; a
virtualenv from pinned requirements) into a cache folder keyed by the files
that decide what gets installed, so a second run installs nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[1]
FOREIGN = ROOT / "foreign"
DEFECT_VARIABLE = "TOKENPROOF_DEFECT"
DIALECT_FILE = "tokenproof-dialect.toml"
INSTALL_TIMEOUT_S = 600


class InstallFailed(RuntimeError):
    """npm or pip could not install a foreign service's dependencies."""


@dataclass(frozen=True)
class Foreign:
    """A foreign service ready to start: the command and the folder it runs in."""

    name: str
    command: str
    cwd: Path
    defects: dict[str, dict[str, Any]]

    @property
    def dialect(self) -> Path | None:
        """The service's dialect file, when it speaks its own words (docs/dialects.md)."""
        path = self.cwd / DIALECT_FILE
        return path if path.is_file() else None

    def verify_args(self, defect: str | None = None) -> list[str]:
        """`tokenproof verify` options that start this service (with a defect on)."""
        args = ["--target-command", self.command, "--target-cwd", str(self.cwd)]
        if self.dialect is not None:
            args += ["--dialect", str(self.dialect)]
        if defect is not None:
            args += ["--target-env", f"{DEFECT_VARIABLE}={defect}"]
        return args


# What each service needs beyond Python, as test markers (tests/needs.py);
# a service not listed needs Node if it has a package.json.
SERVICE_NEEDS = {"node-bullmq": ("needs_node", "needs_redis")}


def marks(name: str) -> list[pytest.MarkDecorator]:
    """The `needs_*` markers of a foreign service's tests."""
    default = ("needs_node",) if (FOREIGN / name / "package.json").is_file() else ()
    return [getattr(pytest.mark, need) for need in SERVICE_NEEDS.get(name, default)]


def names() -> list[str]:
    return sorted(p.name for p in FOREIGN.iterdir() if (p / "defects.json").is_file())


def _digest(*files: Path) -> str:
    sha = hashlib.sha256()
    for path in files:
        sha.update(path.read_bytes())
    return sha.hexdigest()[:12]


def _run(argv: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise InstallFailed(
            f"{' '.join(argv)} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
        )


@contextlib.contextmanager
def _installing(cache: Path, name: str) -> Iterator[None]:
    """One installer at a time per service: pytest-xdist workers share the cache."""
    with open(cache / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _node(folder: Path, cache: Path) -> tuple[str, Path]:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise InstallFailed("Node.js and npm are needed for the Node foreign service")
    sources = sorted(p for p in folder.rglob("*") if p.is_file() and "node_modules" not in p.parts)
    copy = cache / f"{folder.name}-{_digest(*sources)}"
    with _installing(cache, folder.name):
        if not copy.exists():
            # Installed aside and renamed: a half-installed copy is never used.
            partial = copy.with_name(copy.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(folder, partial, ignore=shutil.ignore_patterns("node_modules"))
            _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=partial)
            partial.rename(copy)
    return "node server.js", copy


def _python(folder: Path, cache: Path) -> tuple[str, Path]:
    requirements = folder / "requirements.txt"
    venv = cache / f"{folder.name}-venv-{_digest(requirements)}"
    gunicorn = venv / "bin" / "gunicorn"
    done = venv / ".installed"  # written last: a half-built venv is rebuilt
    with _installing(cache, folder.name):
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            _run([sys.executable, "-m", "venv", str(venv)])
            _run([str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(requirements)])
            done.touch()
    return f"{gunicorn} -c gunicorn.conf.py app:app", folder


def prepare(name: str, cache: Path) -> Foreign:
    """Install `foreign/<name>` (once per dependency set) and say how to start it."""
    folder = FOREIGN / name
    cache.mkdir(parents=True, exist_ok=True)
    if (folder / "package-lock.json").is_file():
        command, cwd = _node(folder, cache)
    elif (folder / "requirements.txt").is_file():
        command, cwd = _python(folder, cache)
    else:
        raise InstallFailed(f"{folder} has neither package-lock.json nor requirements.txt")
    defects = json.loads((folder / "defects.json").read_text())
    return Foreign(name, command, cwd, defects)
