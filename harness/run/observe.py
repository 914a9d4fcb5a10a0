"""The one observation step shared by scenarios, load runs and the model: the
final database rows of some users and the emulator's state, scoped to them, as
the `Observation` every checker reads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from harness.checkers import Observation, scoped
from harness.history import Op
from harness.run.collect import MIN_LOGGED_TEXT, logged_errors, read_db
from harness.state import StripeState
from harness.target.start import Target


async def observe(
    target: Target,
    users: Iterable[str],
    ops: list[Op],
    *,
    metadata_prefix: str | None = None,
    compact: bool = False,
    server_errors: bool = False,
) -> Observation:
    """`metadata_prefix`: ask the emulator only for intents whose `userId` starts
    with it (a long run would otherwise copy its whole history every time).
    `compact`: sums instead of every transfer row, and only what a verdict reads
    from the emulator (a long load run, whose ops are not in `ops`).
    `server_errors`: some answer was a 5xx even if `ops` does not show it."""
    chosen = frozenset(users)
    db = await read_db(target.database_url, chosen, compact=compact, dialect=target.dialect)
    scope = ("userId", metadata_prefix) if metadata_prefix is not None else None
    snapshot = await asyncio.to_thread(
        target.emulator.state, metadata_prefix=scope, compact=compact
    )
    db, stripe_state = scoped(db, StripeState.from_snapshot(snapshot), chosen)
    # Read only when a 5xx could carry them: a load run's log can be long.
    errors = server_errors or any(op.status is not None and op.status >= 500 for op in ops)
    logged = logged_errors(target.server_log) if errors and target.server_log else ()
    # Stripe's own error messages, as the emulator answered them, are internal too.
    stripe_said = (r.get("error_message", "") for r in stripe_state.requests) if errors else ()
    learned = (*logged, *(m for m in dict.fromkeys(stripe_said) if len(m) >= MIN_LOGGED_TEXT))
    return Observation(ops, db, stripe_state, logged_errors=learned)
