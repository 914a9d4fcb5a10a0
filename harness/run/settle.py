"""Settled means converged: the one rule every consumer waits by (scenarios,
`Run.settled()`, the model's comparison step, the load run's verdict).

A service may credit inside the webhook request, or answer 2xx and let a queue
worker credit later; the contract allows both. So after Stripe's deliveries
settle, the rows are read again, with backoff, until every outcome the service
acknowledged shows in them (`checkers.settling.unaccounted`) and they have not
changed for the target's quiet window, or the settle deadline passes. The
deadline counts from the last credit that landed: a worker still crediting,
one slow Stripe call after another, is given time (up to PROGRESS_CAP times the
deadline in all), while a credit that never comes is reported a deadline after
the last one that did. Each read is also judged for what the contract says
holds always (no negative balance); the rest is judged once, on the
converged read.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from typing import Any

from harness.checkers import Observation
from harness.checkers.settling import unaccounted
from harness.checkers.stripe import acknowledged, acknowledged_at
from harness.history import Op
from harness.run.observe import observe
from harness.state import Delivery, NegativeSeen, Settling
from harness.target.spec import QUIET_MIN_S, SettlePolicy
from harness.target.start import Target

DELIVERIES_WITHIN_S = 30.0  # without progress, for Stripe's own deliveries and retries
FIRST_POLL_S = 0.01
MAX_POLL_S = 0.1
# While owed credits keep landing, settling may last this many settle deadlines.
PROGRESS_CAP = 6


async def settle(
    target: Target,
    users: Collection[str],
    ops: list[Op],
    *,
    release: bool = True,
    deliveries_within: float = DELIVERIES_WITHIN_S,
    **read: bool,
) -> Observation:
    """Release held deliveries (unless `release=False`), wait for Stripe's
    deliveries and retries to finish, then `converge`. `read`: how each read
    is made (`compact`, `server_errors`: as for `observe`; a load run)."""
    if release:
        await asyncio.to_thread(target.emulator.release)
    await asyncio.to_thread(target.emulator.wait_settled, deliveries_within)
    return await converge(target, users, ops, **read)


async def converge(
    target: Target, users: Collection[str], ops: list[Op], **read: bool
) -> Observation:
    """Read until converged or the target's settle deadline; the last read, with
    how it got there (`Observation.settling`)."""
    # Only these users' intents from the emulator: its whole history grows all run.
    prefix = _common_prefix(users)
    once = functools.partial(observe, target, users, ops, metadata_prefix=prefix, **read)
    return await poll(once, target.settle, scope=prefix)


async def poll(
    read: Callable[[], Awaitable[Observation]], policy: SettlePolicy, *, scope: str | None = None
) -> Observation:
    """The convergence loop over any `read` (tests give it scripted reads).

    `scope` names what is read (the users' common prefix): when nothing was
    acknowledged since its last convergence and nothing is owed, no worker has
    anything new to do, so the first read is converged (the model settles after
    every step; most steps are transfers, which the contract makes synchronous)."""
    started = time.monotonic()
    backoff = FIRST_POLL_S
    negatives: list[NegativeSeen] = []
    first_missing: set[str] | None = None
    lags: dict[str, float] = {}
    previous: Any = None
    unchanged_since = started
    last_credit = started  # progress: an owed outcome that showed in the rows
    reads = 0
    nothing_new = False
    while True:
        observation = await read()
        reads += 1
        now = time.monotonic()
        after = now - started
        negatives += [
            NegativeSeen(b.user_id, b.balance, after)
            for b in observation.db.balances
            if b.balance < 0
        ]
        acked = acknowledged(observation.stripe)
        missing = unaccounted(observation.db, observation.stripe, acked)
        if first_missing is None:
            first_missing = set(missing)
        acked_count = sum(len(d) for d in acked.values())
        if reads == 1:
            # No scope (a load run's read): only a read with no delivery at all.
            nothing_new = acked_count == (policy.acked.get(scope, 0) if scope is not None else 0)
        for pi in first_missing - set(missing) - set(lags):
            lags[pi] = max(0.0, time.time() - acknowledged_at(acked[pi][-1]))
            last_credit = now
        current_lag = max(lags.values(), default=0.0)
        quiet_s = 0.0 if nothing_new and not first_missing else policy.quiet_s(current_lag)
        fingerprint = _fingerprint(observation)
        if fingerprint != previous:
            previous, unchanged_since = fingerprint, now
        quiet_for = now - unchanged_since
        converged = not missing and quiet_for >= quiet_s
        left = min(policy.timeout_s - (now - last_credit), PROGRESS_CAP * policy.timeout_s - after)
        if left <= 0 and not missing and quiet_for >= QUIET_MIN_S:
            # The deadline cut the quiet window short, but the rows did stop.
            converged = True
        if converged or left <= 0:
            # Every settling with something new counts towards the typical lag, the
            # ones whose credits were already in place too (a lag of 0).
            policy.settled(scope, acked_count, None if nothing_new else current_lag)
            settling = Settling(
                converged=converged,
                waited_s=after,
                reads=reads,
                timeout_s=policy.timeout_s,
                quiet_s=quiet_s,
                lags=tuple(sorted(lags.items(), key=lambda kv: -kv[1])),
                pending=_pending(missing, acked),
                still_changing=not converged and not missing,
                negatives=tuple(negatives),
            )
            return replace(observation, settling=settling)
        # Backoff while something is owed; once nothing is, the next read is the
        # one that ends the quiet window.
        wait = backoff if missing else max(quiet_s - quiet_for, FIRST_POLL_S)
        await asyncio.sleep(min(wait, left))
        backoff = min(backoff * 2, MAX_POLL_S)


def _pending(
    missing: dict[str, str], acked: dict[str, list[Delivery]]
) -> tuple[tuple[str, str], ...]:
    """What is still owed, with how long since its last acknowledged delivery."""
    return tuple(
        (
            pi,
            f"{what} {time.time() - acknowledged_at(acked[pi][-1]):.1f} s after "
            "its last delivery was acknowledged",
        )
        for pi, what in sorted(missing.items())
    )


def _common_prefix(users: Collection[str]) -> str | None:
    first, last = min(users, default=""), max(users, default="")
    size = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), None)
    prefix = first[: min(len(first), len(last)) if size is None else size]
    return prefix or None


def _fingerprint(observation: Observation) -> Any:
    """What must stay the same across the quiet window: the rows the checkers read,
    and Stripe's intents and deliveries (a worker's own Stripe calls count)."""
    stripe = observation.stripe
    return (
        observation.db,
        tuple((i["id"], i["status"]) for i in stripe.intents),
        len(stripe.deliveries),
    )
