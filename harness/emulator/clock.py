"""Time and identity, injected so runs are reproducible and tests need no sleeps."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (emulator time)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told; sleepers wake when it passes their time."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, future))
        await future

    def advance(self, seconds: float) -> None:
        self._now += seconds
        due = [s for s in self._sleepers if s[0] <= self._now]
        self._sleepers = [s for s in self._sleepers if s[0] > self._now]
        for _, future in due:
            if not future.done():
                future.set_result(None)


_ALPHANUMERIC = bytes.maketrans(b"+/", b"aZ")


class IdSource:
    """Stripe-looking ids (`pi_3Q...`) from a seeded generator: same seed, same ids.

    Random bytes in base 64 with `+` and `/` mapped to letters: an id costs a
    fraction of drawing its characters one by one, and a request makes several.
    """

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def _text(self, length: int) -> str:
        raw = base64.b64encode(self._rng.randbytes(length * 3 // 4 + 1))
        return raw[:length].translate(_ALPHANUMERIC).decode()

    def new(self, prefix: str, length: int = 24) -> str:
        return prefix + "_" + self._text(length)

    def token(self, length: int = 25) -> str:
        return self._text(length)
