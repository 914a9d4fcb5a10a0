"""What the operations on intents and money act on: the emulator's state and the
few helpers they call. A Protocol, so that `intents` and `money` need not import
`core`, which calls them (no import cycle)."""

from __future__ import annotations

from typing import Any, Protocol

from harness.emulator.clock import Clock, IdSource
from harness.emulator.listing import Collection
from harness.emulator.resources import Event, PaymentIntent, RequestContext


class World(Protocol):
    clock: Clock
    ids: IdSource
    api_version: str
    intents: Collection[PaymentIntent]
    charges: Collection[dict[str, Any]]
    refunds: Collection[dict[str, Any]]
    balance_transactions: dict[str, Any]  # money.BalanceTransaction by id

    def intent(self, ident: str) -> PaymentIntent: ...

    def charge(self, ident: str) -> dict[str, Any]: ...

    def event(
        self,
        type_: str,
        intent: PaymentIntent,
        ctx: RequestContext,
        data_object: dict[str, Any] | None = None,
        previous: dict[str, Any] | None = None,
    ) -> Event: ...

    def set_status(self, intent: PaymentIntent, status: str) -> None: ...
