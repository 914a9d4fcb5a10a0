"""Balance events for the frontend: published after commit, with a per-user version.

Events of concurrent transactions can be published out of order; the version
(bumped in the same UPDATE as the balance) lets a client drop stale ones, so
its last kept event always equals the committed balance.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

QUEUE_LIMIT = 1000


@dataclass(frozen=True)
class BalanceEvent:
    user_id: str
    balance: int
    version: int

    def to_json(self) -> dict[str, object]:
        return {"type": "balance", "balance": self.balance, "version": self.version}


class BalanceHub:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[BalanceEvent]]] = defaultdict(set)

    def subscribe(self, user_id: str) -> asyncio.Queue[BalanceEvent]:
        queue: asyncio.Queue[BalanceEvent] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers[user_id].add(queue)
        return queue

    def unsubscribe(self, user_id: str, queue: asyncio.Queue[BalanceEvent]) -> None:
        self._subscribers[user_id].discard(queue)
        if not self._subscribers[user_id]:
            del self._subscribers[user_id]

    def publish(self, event: BalanceEvent) -> None:
        for queue in list(self._subscribers.get(event.user_id, ())):
            if queue.full():
                # A client that stopped reading: drop its oldest event, the
                # version lets it notice the gap and refetch.
                queue.get_nowait()
            queue.put_nowait(event)
