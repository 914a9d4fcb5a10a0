"""The load run's op file, read as it grows: each op goes to the checkers' folds
and to the run's tally the moment it is read, so memory does not grow with the
run. The file is the only copy of the ops; a violation's evidence is looked up
in it (one pass) when the verdict is written."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from harness.checkers import Checks
from harness.history import Op

READ_AT_MOST = 8 << 20  # bytes per read, so a late reader catches up in steps


@dataclass
class Tally:
    """What the report counts, and who bought (the live checks leave them out)."""

    requests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0
    unreadable: int = 0  # lines that were not an op (a worker killed mid-send)
    buyers: set[str] = field(default_factory=set)  # users with a purchase call

    def feed(self, op: Op) -> None:
        if op.type == "invoke":
            self.requests += 1
        else:
            self.outcomes[op.type] += 1
            if op.status is not None and op.status >= 500:
                self.server_errors += 1
        if op.user is not None and op.f == "purchase":
            self.buyers.add(op.user)


class OpFile:
    """Reads complete lines appended since the last read; indexes ops in file order."""

    def __init__(self, path: Path, checks: Checks, tally: Tally) -> None:
        self.path = path
        self.checks = checks
        self.tally = tally
        self.offset = 0
        self.read_ops = 0
        self._partial = b""
        self.last_read = 0.0  # monotonic

    def read_new(self) -> int:
        """Fold every op appended since the last call; how many there were."""
        before = self.read_ops
        try:
            with self.path.open("rb") as f:
                while True:
                    f.seek(self.offset)
                    chunk = f.read(READ_AT_MOST)
                    if not chunk:
                        break
                    self.offset += len(chunk)
                    self._fold(chunk)
        except FileNotFoundError:
            pass  # the master has not written yet
        self.last_read = time.monotonic()
        return self.read_ops - before

    def _fold(self, chunk: bytes) -> None:
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # the master may be mid-write
        for line in lines:
            if not line.strip():
                continue
            op = _parse(line, self.read_ops)
            if op is None:
                self.tally.unreadable += 1
                continue
            self.read_ops += 1
            self.checks.feed(op)
            self.tally.feed(op)

    def ops_at(self, indexes: Collection[int]) -> dict[int, Op]:
        """The ops at these indexes, from the file (one pass)."""
        wanted = set(indexes)
        found: dict[int, Op] = {}
        if not wanted:
            return found
        index = 0
        with self.path.open("rb") as f:
            for line in f:
                op = _parse(line, index) if line.strip() else None
                if op is None:
                    continue
                if index in wanted:
                    found[index] = op
                    if len(found) == len(wanted):
                        break
                index += 1
        return found


def _parse(line: bytes, index: int) -> Op | None:
    try:
        return Op(index=index, **json.loads(line))
    except (ValueError, TypeError):
        return None
