"""model: Hypothesis model-based runs (random sequences, shrunk on failure)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from harness.api import Run
from harness.contract import INVARIANTS
from harness.model import ModelOutcome, Tally, deep_profile, run_model, steps_text
from harness.run.scenario import scenario

PROGRESS_EVERY_S = 15.0


@scenario("model", users=[], checkers=(), timeout_s=900, model_budget=True)
async def state_machine(run: Run) -> None:
    """Random sequences of purchases (card, 3DS, declined, during a Stripe outage,
    while Stripe is slow), customer actions, webhook delivery modes, tips,
    deductions, bad input, retries of any keyed request, double submits and bursts
    of concurrent requests, compared after every step with an in-memory model (a
    burst must match some serial order). A failure shows the shrunk steps as code."""
    profile = deep_profile(run.options.examples, run.options.steps)
    tally = Tally(shrink_budget_s=run.options.shrink_s)
    started = time.monotonic()
    task: asyncio.Future[ModelOutcome] | None = None
    try:
        task = asyncio.ensure_future(
            asyncio.to_thread(run_model, run.target, profile, seed=run.seed, tally=tally)
        )
        while not task.done():
            await asyncio.wait({task}, timeout=PROGRESS_EVERY_S)
            if not task.done():
                run.progress(tally.progress(run.options.examples, time.monotonic() - started))
        outcome = task.result()
    except BaseException:
        # Cancelled (Ctrl-C, SIGTERM, the scenario's timeout): the thread cannot be
        # interrupted, so tell the model to stop at its next step (the flag is the
        # run's own, so this holds even if the thread has not started yet), then
        # wait for the thread so that nothing is left running.
        tally.cancel()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        raise
    run.ops_elsewhere = tally.requests
    run.note(f"{tally.examples} examples, {tally.checks} model checks")
    if outcome.steps is not None:
        run.note(f"shrunk to {steps_text(outcome.steps)}")
    run.expect(
        outcome.passed,
        "model-matches-service",
        outcome.text[:6000],
        steps=outcome.steps,
        **_what_failed(outcome.text),
    )


TRANSFER_RULES = frozenset(
    {
        "transfer",
        "self_transfer",
        "bad_amounts",
        "token_without_exp",
        "double_submit",
        "reuse_key_with_another_body",
        "burst",
        "crossing_transfers",
        "database_connections_killed",
    }
)


def _what_failed(text: str) -> dict[str, Any]:
    """For grouping the failure with the problem it shows (harness.problems): the
    checks its failing step broke and the route of that step (the last rule call
    before the failure; a retry is a transfer's only if it retries one)."""
    lead = text.split("Hypothesis's own report:", 1)[0]
    checks = sorted({inv for inv in INVARIANTS if f"{inv}:" in lead})
    calls = [
        (name, args)
        for name, args in re.findall(r"state\.(\w+)\(([^)\n]*)", lead)
        if name not in IGNORED_CALLS
    ]
    route = None
    if calls:
        name, args = calls[-1]
        # A rule that takes the route as an argument (f=...) says which it used.
        transfer = name in TRANSFER_RULES and "f='purchase'" not in args
        route = "transfer" if transfer else "purchase"
    return {"failed_checks": checks, "route": route}


IGNORED_CALLS = frozenset({"create_users", "service_matches_model", "teardown", "webhook_delivery"})
