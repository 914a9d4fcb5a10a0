"""What a test needs from the machine, with one policy: missing locally, the
test is skipped with the way to install it; missing under CI=true, it fails
(CI installs everything, so a skip there would hide a broken setup)."""

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


def private_tmp() -> list[str]:
    """A command prefix that runs its command in a mount namespace of its own
    with an empty /tmp: as another machine would have it."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        missing("no private mount namespace (needs root and unshare)", "run as root")
    return ["unshare", "-m", "sh", "-c", 'mount -t tmpfs tmpfs /tmp && exec "$@"', "private-tmp"]


def deliverable_sigint() -> None:
    """`preexec_fn` for a child a test will Ctrl-C: a shell starts background jobs
    with SIGINT ignored, and children inherit that, as the CLI would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
