"""The final state of a run as frozen data: database rows and Stripe's objects,
typed, for the checkers (pure: this module imports no database driver)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Required, TypedDict

from harness.history import Op


@dataclass(frozen=True)
class LedgerRow:
    """A `token_transactions` row."""

    id: int
    user_id: str
    type: str
    tokens: int
    status: str
    stripe_payment_intent_id: str | None
    client_idempotency_key: str | None
    related_user_id: str | None
    amount_usd: Decimal | None
    created_at: float | None = None  # epoch seconds (the database's clock)
    # More than 1: the completed tip or call rows of one user, kind and direction,
    # summed in the database (a long load run's compact read); `id` is the last.
    rows: int = 1


@dataclass(frozen=True)
class Earning:
    """A `creator_earnings` row."""

    creator_id: str
    earning_type: str
    source_id: str
    tokens_earned: int
    usd_value: Decimal
    fan_id: str | None
    # `summed`: a creator's earnings of one type whose sources are all unique,
    # `rows` of them, summed in the database (a long load run's compact read).
    rows: int = 1
    summed: bool = False


@dataclass(frozen=True)
class UserRow:
    """A `users` row (its `supabase_id` is the id everything else names)."""

    supabase_id: str
    is_creator: bool
    total_earnings: Decimal


@dataclass(frozen=True)
class BalanceRow:
    """A `token_balances` row."""

    user_id: str
    balance: int
    total_earned: int


@dataclass(frozen=True)
class DbState:
    """The rows of the contract's four tables, for the users observed."""

    users: tuple[UserRow, ...]
    balances: tuple[BalanceRow, ...]
    ledger: tuple[LedgerRow, ...]
    earnings: tuple[Earning, ...]

    def balance_of(self, user: str) -> int:
        return next((b.balance for b in self.balances if b.user_id == user), 0)


class Intent(TypedDict, total=False):
    """A PaymentIntent as the emulator reports it (Stripe's shape, plus its history)."""

    id: Required[str]
    status: Required[str]
    amount: int
    currency: str
    metadata: dict[str, str]
    latest_charge: Any
    status_history: list[tuple[float, str]]


class EventData(TypedDict):
    object: dict[str, Any]


class Event(TypedDict, total=False):
    id: Required[str]
    type: Required[str]
    data: Required[EventData]
    created: int


class Delivery(TypedDict, total=False):
    """One delivery attempt of a webhook event, and what the service answered."""

    event_id: Required[str]
    event_type: Required[str]
    endpoint_id: str
    copy: int
    attempt: int
    signature: str  # "valid", "forged", "stale"
    started: float  # epoch seconds
    status: int | None
    error: str | None
    latency_s: float | None
    dropped: bool


class ApiRequest(TypedDict, total=False):
    """One request the service made to the Stripe API, as the emulator logged it."""

    request_id: Required[str]
    method: str
    path: str
    at: float
    idempotency_key: str | None
    payment_method: str | None
    fault: str | None
    status: int
    intent_id: str | None
    replayed: bool
    dropped: bool
    error_message: str  # what the emulator answered an error with


@dataclass(frozen=True)
class StripeState:
    """The emulator's objects and logs, for the users observed."""

    intents: tuple[Intent, ...]
    events: tuple[Event, ...]
    deliveries: tuple[Delivery, ...]
    requests: tuple[ApiRequest, ...]

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> StripeState:
        """From `EmulatorClient.state()`: its JSON is trusted to have these shapes."""
        return cls(
            intents=tuple(snapshot["intents"]),
            events=tuple(snapshot["events"]),
            deliveries=tuple(snapshot["deliveries"]),
            requests=tuple(snapshot["requests"]),
        )


@dataclass(frozen=True)
class NegativeSeen:
    """A negative balance one read saw while the run was settling."""

    user_id: str
    balance: int
    after_s: float  # since webhook deliveries settled


@dataclass(frozen=True)
class Settling:
    """How the state the checkers read converged after webhook deliveries settled
    (`harness.run.settle.converge`): reads with backoff until it stopped changing for a
    quiet window and every acknowledged Stripe outcome was reflected in the rows,
    or the deadline passed."""

    converged: bool
    waited_s: float  # from deliveries settled to the last read
    reads: int
    timeout_s: float
    quiet_s: float  # how long the state had to stay unchanged
    # Intents the first read did not yet reflect: seconds from the service's last
    # 2xx to a delivery of the intent's event to the read that first showed it.
    lags: tuple[tuple[str, float], ...] = ()
    # At the deadline: intent -> what its rows still did not show.
    pending: tuple[tuple[str, str], ...] = ()
    # At the deadline: the rows were still changing between reads.
    still_changing: bool = False
    negatives: tuple[NegativeSeen, ...] = ()

    def pending_of(self, intent: str) -> str | None:
        return dict(self.pending).get(intent)


@dataclass(frozen=True)
class Observation:
    """What the checkers judge: the history, the final database and Stripe state,
    how the reads converged, and what the database server logged."""

    ops: list[Op]
    db: DbState
    stripe: StripeState
    # How the reads converged before this one (None: read once, not settled).
    settling: Settling | None = None
    # Error messages the database server logged during the run (internal text).
    logged_errors: tuple[str, ...] = ()
    # False when requests may have been sent that the history does not hold (a
    # load worker lost mid-run takes its unsent ops with it): checks that count
    # what was asked then judge only what the history does show.
    history_complete: bool = True


def empty_observation(ops: list[Op] | None = None) -> Observation:
    """No rows and no Stripe objects: for checkers judged on their ops alone."""
    return Observation(
        ops or [], DbState((), (), (), ()), StripeState((), (), (), ()), logged_errors=()
    )
