"""Wait for a condition with a deadline: the only way the harness waits.

Never a fixed sleep standing in for synchronisation: we poll a condition that
can be observed, and fail with a named error when the deadline passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from harness.errors import TokenproofError


class DeadlineExceeded(TokenproofError):
    """A condition did not come true before its deadline."""


def wait_until(
    condition: Callable[[], bool], *, within: float, what: str, interval: float = 0.01
) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            raise DeadlineExceeded(f"{what}: not true after {within:g} s")
        time.sleep(interval)


async def wait_until_async(
    condition: Callable[[], Awaitable[bool]],
    *,
    within: float,
    what: str,
    interval: float = 0.01,
) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() >= deadline:
            raise DeadlineExceeded(f"{what}: not true after {within:g} s")
        await asyncio.sleep(interval)


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie awaiting its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")
