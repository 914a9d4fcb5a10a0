"""The one recorder of calls (`harness.run.record`): every call ends its op
exactly once, whether it answered, broke or was cancelled."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from harness.history import History
from harness.run.record import recorded
from harness.target.client import Answer

pytestmark = pytest.mark.unit


async def _answers() -> Answer:
    return Answer(200, {"balance": 5})


async def _breaks() -> Answer:
    raise httpx.ConnectError("connection refused")


async def _hangs(sent: asyncio.Event) -> Answer:
    sent.set()
    await asyncio.Event().wait()  # no answer, ever
    raise AssertionError("never set")


def test_an_answer_is_recorded_with_its_status_and_body() -> None:
    history = History()
    answer = asyncio.run(recorded(history, "w1", "balance", "fan", {}, _answers()))
    assert answer == Answer(200, {"balance": 5})
    invoke, done = history.ops
    assert (invoke.type, done.type, done.status, done.body) == ("invoke", "ok", 200, {"balance": 5})
    assert done.process == invoke.process


def test_a_broken_connection_is_an_unknown_outcome_carrying_the_error() -> None:
    history = History()
    answer = asyncio.run(recorded(history, "w1", "tip", "fan", {"tokenAmount": 1}, _breaks()))
    assert answer.status == 0 and answer.body == "ConnectError: connection refused"
    _, done = history.ops
    assert (done.type, done.status, done.error) == ("info", None, answer.body)


def test_a_cancelled_call_still_ends_its_op_and_the_cancellation_goes_on() -> None:
    history = History()

    async def cancel_it() -> None:
        sent = asyncio.Event()
        task = asyncio.ensure_future(recorded(history, "w1", "tip", "fan", {}, _hangs(sent)))
        await sent.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())
    _, done = history.ops
    assert (done.type, done.error) == ("info", "cancelled")
