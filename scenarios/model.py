"""model: Hypothesis model-based runs (random sequences, shrunk on failure)."""

from __future__ import annotations

import asyncio

from harness.model import cancel_model, run_model
from harness.runner import Run
from harness.scenario import scenario


@scenario("model", users=[], checkers=(), timeout_s=900)
async def state_machine(run: Run) -> None:
    """Random sequences of purchases (card, 3DS, declined), customer actions, webhook
    delivery modes, tips, deductions, retries of any keyed request and bursts of
    concurrent requests, compared after every step with an in-memory model (a burst
    must match some serial order). A failure shows the shrunk steps as code."""
    try:
        outcome = await asyncio.to_thread(run_model, run.target)
    except BaseException:
        # Cancelled (Ctrl-C, SIGTERM, the scenario's timeout): the thread cannot be
        # interrupted, so tell the model to stop at its next step; asyncio.run then
        # waits for that thread, and nothing is left running.
        cancel_model()
        raise
    if outcome.steps is not None:
        run.note(f"shrunk to {outcome.steps} steps")
    run.expect(outcome.passed, "model-matches-service", outcome.text[-6000:], steps=outcome.steps)
