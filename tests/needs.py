"""What a test needs from the machine, with one policy: missing locally, the
test is skipped with the way to install it; missing under CI=true, it fails
(CI installs everything, so a skip there would hide a broken setup).

A test says what it needs with a marker (`@pytest.mark.needs_docker`, ...);
the root conftest checks each marker before the test runs (`check`)."""

from __future__ import annotations

import os
import shutil
import signal
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def missing(what: str, hint: str) -> NoReturn:
    if under_ci():
        pytest.fail(f"CI=true and {what}; .ci/run must provide it ({hint})")
    pytest.skip(f"{what} ({hint})")


def _docker() -> str | None:
    from tests.images import docker_ready

    return docker_ready()


def _chromium() -> str | None:
    from tests.chromium import find_chromium

    return None if find_chromium() else "no chromium on PATH (or TOKENPROOF_CHROMIUM)"


def _tools(*names: str) -> str | None:
    absent = [n for n in names if shutil.which(n) is None]
    return f"{' and '.join(absent)} not on PATH" if absent else None


def _root() -> str | None:
    if os.geteuid() != 0:
        return "not running as root"
    return _tools("unshare", "mount")


# marker -> (what is missing, or None; how to get it)
NEEDS = {
    "needs_docker": (_docker, "apt-get install docker.io, then start dockerd"),
    "needs_chromium": (_chromium, "apt-get install chromium"),
    "needs_node": (lambda: _tools("node", "npm"), "install Node.js 20 with npm"),
    "needs_redis": (lambda: _tools("redis-server"), "apt-get install redis-server"),
    "needs_root": (_root, "run the tests as root (private mount namespaces, server users)"),
}


def check(marker: str) -> None:
    """Skip or fail (by the policy) if what `marker` names is missing."""
    probe, hint = NEEDS[marker]
    reason = probe()
    if reason is not None:
        missing(reason, hint)


def private_tmp(hidden: str) -> list[str]:
    """A command prefix that runs its command in a mount namespace of its own,
    where the folder `hidden` (another process's temp folder) is an empty tmpfs:
    as another machine would see it. Only that folder: the checkout and its
    virtualenv may live under /tmp and must stay visible."""
    check("needs_root")
    return ["unshare", "-m", "sh", "-c", 'mount -t tmpfs tmpfs "$0" && exec "$@"', hidden]


def deliverable_sigint() -> None:
    """`preexec_fn` for a child a test will Ctrl-C: a shell starts background jobs
    with SIGINT ignored, and children inherit that, as the CLI would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
