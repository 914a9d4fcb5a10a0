"""The history of a run: every call as an `invoke` record followed by exactly one
`ok`, `fail` or `info` record (info: sent, outcome unknown)."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

OpType = Literal["invoke", "ok", "fail", "info"]


@dataclass(frozen=True)
class Op:
    index: int
    process: int  # the call's id: its invoke and completion share it
    type: OpType
    worker: str
    f: str  # "tip", "deduct", "purchase", "balance", "webhook", "raw", ...
    user: str | None
    args: dict[str, Any]
    time_s: float  # since the start of the run
    status: int | None = None
    body: Any = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def classify(status: int | None) -> OpType:
    """2xx happened; 4xx did not (the contract says so); 5xx and no answer: unknown."""
    if status is None or status >= 500:
        return "info"
    if 200 <= status < 300:
        return "ok"
    return "fail"


def invoked(
    index: int, process: int, worker: str, f: str, user: str | None, args: dict[str, Any], at: float
) -> Op:
    """The record of a call as it is sent."""
    return Op(index, process, "invoke", worker, f, user, args, at)


def completed(
    invoke: Op, index: int, status: int | None, body: Any, error: str | None, at: float
) -> Op:
    """The record of how a call ended: its invoke's call, classified by `status`."""
    return Op(
        index,
        invoke.process,
        classify(status),
        invoke.worker,
        invoke.f,
        invoke.user,
        invoke.args,
        at,
        status,
        body,
        error,
    )


@dataclass
class History:
    """A run's ops in memory (scenarios, the model). A load run's Locust
    processes record the same `invoked`/`completed` ops and send them on."""

    ops: list[Op] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _index: itertools.count[int] = field(default_factory=itertools.count)
    _process: itertools.count[int] = field(default_factory=itertools.count)

    def invoke(self, worker: str, f: str, user: str | None, args: dict[str, Any]) -> Op:
        op = invoked(next(self._index), next(self._process), worker, f, user, args, self._now())
        self.ops.append(op)
        return op

    def complete(
        self, invoke: Op, status: int | None, body: Any = None, error: str | None = None
    ) -> Op:
        op = completed(invoke, next(self._index), status, body, error, self._now())
        self.ops.append(op)
        return op

    def _now(self) -> float:
        return round(time.monotonic() - self.started, 6)

    def now(self) -> float:
        """Seconds since the start of the run, on the clock of the ops' `time_s`."""
        return self._now()

    def completions(self) -> list[Op]:
        return [op for op in self.ops if op.type != "invoke"]

    def write_jsonl(self, path: Path) -> None:
        with path.open("w", encoding="utf-8") as f:
            for op in self.ops:
                f.write(json.dumps(op.to_json(), default=str) + "\n")


def read_jsonl(path: Path) -> list[Op]:
    ops = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            ops.append(Op(**json.loads(line)))
        except ValueError:
            # A process killed mid-write leaves half a line: that call's outcome
            # is unknown, and its invoke (already written) says so.
            continue
    return ops
