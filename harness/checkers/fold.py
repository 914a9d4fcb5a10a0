"""Checkers that read the history as a stream: they fold one op at a time and
decide once the final state is known, so a load run of millions of ops is
checked in memory that does not grow with it (pure).

A fold keeps only what its verdict needs (counters, the keys it must not see
twice, the calls still in flight) and a few ops as examples. Where a violation
must show an op it did not keep, it names the op's index and `finish` asks for
it through `ops_at` (a list lookup in a scenario, one pass over the op file in
a load run).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.checkers.result import CheckResult, Violation
from harness.history import Op

if TYPE_CHECKING:
    from harness.checkers import Observation

OpsAt = Callable[[Collection[int]], dict[int, Op]]
# Violations of one kind a fold keeps with their evidence; past this it counts.
KEPT_VIOLATIONS = 50


class OpFold:
    """One checker over the op stream. `feed` every op in the order one worker
    recorded them (an op's invoke comes before its completion; workers
    interleave), then `finish` with the final state."""

    name = ""

    def feed(self, op: Op) -> None:
        pass

    def early(self) -> list[Violation]:
        """Violations already certain before the run ends (a load run can stop
        at the first one). Only what no later op or state can undo."""
        return []

    def finish(self, observation: Observation, ops_at: OpsAt) -> CheckResult:
        raise NotImplementedError


class StateCheck(OpFold):
    """A checker of the final state alone: it reads no op."""

    def __init__(self, name: str, judge: Callable[[Observation], CheckResult]) -> None:
        self.name = name
        self.judge = judge

    def finish(self, observation: Observation, ops_at: OpsAt) -> CheckResult:
        return self.judge(observation)


@dataclass
class Capped:
    """Violations of one invariant, the first `KEPT_VIOLATIONS` with evidence and
    the rest counted, so a service that fails every request cannot fill memory."""

    invariant: str
    kept: list[Violation] = field(default_factory=list)
    more: int = 0

    def add(self, violation: Violation) -> None:
        if len(self.kept) < KEPT_VIOLATIONS:
            self.kept.append(violation)
        else:
            self.more += 1

    def all(self, what: str) -> list[Violation]:
        if not self.more:
            return list(self.kept)
        summary = Violation(
            self.invariant,
            f"{self.more} more {what} like the {len(self.kept)} above (not kept, to bound memory)",
            {"more": self.more},
        )
        return [*self.kept, summary]

    def __len__(self) -> int:
        return len(self.kept) + self.more


class InFlight:
    """Calls whose invoke was seen and whose completion was not (yet): bounded by
    the requests in flight, not by the run's length."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, int], Op] = {}

    def note(self, op: Op) -> Op | None:
        """Track `op`; for a completion, return its invoke (None if never seen)."""
        key = (op.worker, op.process)
        if op.type == "invoke":
            self.open[key] = op
            return None
        return self.open.pop(key, None)

    def unfinished(self) -> list[Op]:
        return list(self.open.values())


def ops_in(ops: list[Op]) -> OpsAt:
    """`ops_at` for a history held in memory."""

    def lookup(indexes: Collection[int]) -> dict[int, Op]:
        wanted = set(indexes)
        return {op.index: op for op in ops if op.index in wanted}

    return lookup


def fold_all(fold: OpFold, ops: Iterable[Op], observation: Observation) -> CheckResult:
    materialised = list(ops)
    for op in materialised:
        fold.feed(op)
    return fold.finish(observation, ops_in(materialised))


def op_json(op: Op | None, index: int) -> dict[str, Any]:
    return op.to_json() if op is not None else {"index": index, "missing": True}
