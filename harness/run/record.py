"""The one way a call to the service enters a history: its invoke before it is
sent, and exactly one completion, whatever happens to it (scenarios' `Run` and
the model record through this; Locust workers record the same ops in their
own processes)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import httpx

from harness.history import History
from harness.target.client import Answer


async def recorded(
    history: History,
    worker: str,
    f: str,
    user: str | None,
    args: dict[str, Any],
    request: Awaitable[Answer],
) -> Answer:
    """`request`'s answer, recorded as op `f` of `worker`. A connection that
    breaks or times out is an op with an unknown outcome, answered as
    `Answer(0, "<error>")`: the service may or may not have acted on it."""
    invoke = history.invoke(worker, f, user, args)
    try:
        answer = await request
    except httpx.HTTPError as exc:
        error = f"{exc.__class__.__name__}: {exc}"
        history.complete(invoke, None, error=error)
        return Answer(0, error)
    except BaseException:
        # Cancelled (a timeout, Ctrl-C) after sending: the outcome is unknown, and
        # the op must still end, or the checkers would read a call still in flight.
        history.complete(invoke, None, error="cancelled")
        raise
    history.complete(invoke, answer.status, answer.body)
    return answer
