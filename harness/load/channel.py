"""Ops from Locust workers to the master over Locust's own messages: nothing is
shared on disk, so workers may run on other machines.

- The master reads the run's configuration (TOKENPROOF_LOAD, written by
  `tokenproof load`) and hands it to every worker in Locust's spawn message, as
  a custom option: target, emulator, secret, users and seed need no file there.
- Each worker's `Recorder` buffers its ops (invoke, then ok / fail / info, as
  `harness.history` records them) and sends them in batches every
  FLUSH_EVERY_S; at its stop it sends the rest and a `done` with its count.
- The master's `Collector` appends every batch to the run's op file as it
  comes (tokenproof checks the file while the run goes on) and keeps a tally
  per worker in a status file: ops, requests, when it was last heard from,
  whether it finished or was lost.
- At the end, the master asks every worker still connected to stop and flush,
  and waits for each one's `done`, so ops sent after the stop are counted.

Loaded only inside Locust's processes (gevent): it imports nothing that runs
asyncio.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

import gevent
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from harness.history import Op, completed, invoked

OPS, DONE, FLUSH = "tokenproof_ops", "tokenproof_done", "tokenproof_flush"
CONFIG_OPTION = "tokenproof_load"  # the custom option that carries the configuration
FLUSH_EVERY_S = 0.25
STATUS_EVERY_S = 1.0
# How long the master waits for the last ops of workers that are still connected.
FINAL_OPS_WITHIN_S = 20.0
LOCAL = "local"  # the worker id of a run without workers (Locust's LocalRunner)

log = logging.getLogger("tokenproof")


def run_config(environment: Any) -> dict[str, Any]:
    """The run's configuration, as the master read it or a spawn message carried it."""
    options = environment.parsed_options
    found = getattr(options, CONFIG_OPTION, None) if options is not None else None
    if not found:
        raise RuntimeError(
            "tokenproof's Locust users have no run configuration: start the master with "
            "`tokenproof load` (workers: `tokenproof load-worker --master-host ADDR`)"
        )
    return dict(found)


class Recorder:
    """A worker's ops, sent to the master in batches. Call ids carry a random
    prefix per worker, so ops from any number of machines never share one."""

    def __init__(self, environment: Any, started: float) -> None:
        self.environment = environment
        self.started = started
        self.prefix = random.getrandbits(40) << 24
        self._ids = itertools.count()
        self.buffer: list[str] = []
        self.buffered_invokes = 0
        self.sent = 0
        self._flusher = gevent.spawn(self._flush_every)

    def _flush_every(self) -> None:
        while True:
            gevent.sleep(FLUSH_EVERY_S)
            self.flush()

    def invoke(self, worker: str, f: str, user: str | None, args: dict[str, Any]) -> Op:
        op = invoked(0, self.prefix + next(self._ids), worker, f, user, args, self._now())
        self._buffer(op)
        self.buffered_invokes += 1
        return op

    def complete(self, invoke: Op, status: int | None, body: Any, error: str | None) -> None:
        self._buffer(completed(invoke, 0, status or None, body, error, self._now()))

    def _now(self) -> float:
        return round(time.time() - self.started, 6)

    def _buffer(self, op: Op) -> None:
        # The index is the master's to give (its file order): not sent.
        record = {k: v for k, v in op.to_json().items() if k != "index"}
        self.buffer.append(json.dumps(record, default=str))

    def flush(self) -> None:
        # gevent is cooperative: nothing runs between taking the buffer and
        # emptying it, so no op is sent twice or lost.
        if not self.buffer:
            return
        lines, invokes = self.buffer, self.buffered_invokes
        self.buffer, self.buffered_invokes = [], 0
        self.sent += len(lines)
        try:
            self.environment.runner.send_message(
                OPS, {"lines": "\n".join(lines), "ops": len(lines), "requests": invokes}
            )
        except Exception:
            # The master is gone: nobody is left to count these ops. Say so and go on.
            log.exception("tokenproof: could not send %d ops to the master", len(lines))

    def done(self) -> None:
        """Send what is left and the total: the master then knows it has everything."""
        self.flush()
        try:
            self.environment.runner.send_message(DONE, {"sent": self.sent})
        except Exception:
            log.exception("tokenproof: could not tell the master this worker is done")


@dataclass
class WorkerTally:
    ops: int = 0
    requests: int = 0
    first_s: float | None = None  # since the run's start, on the master's clock
    last_s: float | None = None
    done: bool = False
    sent: int | None = None  # the total the worker said it sent
    lost_at_s: float | None = None
    lost_how: str | None = None
    late: int = 0  # ops that came after the master stopped waiting (not checked)


class Collector:
    """The master's side: every batch to the op file, a tally per worker."""

    def __init__(self, environment: Any, config: dict[str, Any]) -> None:
        self.environment = environment
        self.started = float(config["started"])
        self.status_path = str(config["status_path"])
        self.ops_file = open(config["ops_path"], "a", encoding="utf-8")  # noqa: SIM115 - closed in finish
        self.workers: dict[str, WorkerTally] = {}
        self.finished = False
        runner = environment.runner
        runner.register_message(OPS, self._on_ops)
        runner.register_message(DONE, self._on_done)
        self._watcher = gevent.spawn(self._watch)

    def _now(self) -> float:
        return round(time.time() - self.started, 3)

    def _tally(self, worker: str) -> WorkerTally:
        return self.workers.setdefault(worker, WorkerTally())

    def _on_ops(self, environment: Any, msg: Any, **kwargs: Any) -> None:
        data = msg.data
        tally = self._tally(msg.node_id)
        if self.finished:  # after the wait for final ops: too late for the verdict
            tally.late += int(data["ops"])
            return
        self.ops_file.write(data["lines"] + "\n")
        self.ops_file.flush()  # tokenproof reads the file while the run goes on
        tally.done = False  # a worker that sent its last ops runs a new test (web UI)
        tally.ops += int(data["ops"])
        tally.requests += int(data["requests"])
        now = self._now()
        tally.first_s = now if tally.first_s is None else tally.first_s
        tally.last_s = now
        if tally.lost_at_s is not None and not self.finished:
            tally.lost_at_s = tally.lost_how = None  # it came back (Locust heals missing workers)

    def _on_done(self, environment: Any, msg: Any, **kwargs: Any) -> None:
        tally = self._tally(msg.node_id)
        tally.done, tally.sent = True, int(msg.data["sent"])

    def _connected(self) -> dict[str, str]:
        """Workers Locust has, and their state ("missing" once heartbeats stop)."""
        runner = self.environment.runner
        if not isinstance(runner, MasterRunner):
            return {}
        return {str(c.id): str(c.state) for c in runner.clients.all}

    def _watch(self) -> None:
        while True:
            self._mark_lost()
            self.write_status()
            gevent.sleep(STATUS_EVERY_S)

    def _mark_lost(self) -> None:
        if not isinstance(self.environment.runner, MasterRunner):
            return
        connected = self._connected()
        for worker in connected:
            self._tally(worker)
        for worker, tally in self.workers.items():
            state = connected.get(worker)
            if tally.done or tally.lost_at_s is not None:
                continue
            if state is None or state == "missing":
                tally.lost_at_s = tally.last_s if tally.last_s is not None else self._now()
                tally.lost_how = (
                    "stopped sending heartbeats" if state == "missing" else "disconnected"
                )

    def finish(self, *, close: bool = True) -> None:
        """Ask every worker still connected for its last ops and wait for them.
        `close`: the run is over (headless, or Locust quitting), the op file is
        closed. In the web UI a test may start again after a stop: a stop there
        collects the last ops and keeps the file open."""
        if self.finished:
            return
        runner = self.environment.runner
        if isinstance(runner, MasterRunner):
            self._mark_lost()
            waiting = [w for w, t in self.workers.items() if not t.done and t.lost_at_s is None]
            for worker in waiting:
                runner.send_message(FLUSH, None, worker)
            deadline = time.monotonic() + (self.environment.stop_timeout or 0) + FINAL_OPS_WITHIN_S
            while time.monotonic() < deadline and any(
                not self.workers[w].done and self.workers[w].lost_at_s is None for w in waiting
            ):
                gevent.sleep(0.05)
                self._mark_lost()
            for tally in self.workers.values():
                if not tally.done and tally.lost_at_s is None:
                    tally.lost_at_s = tally.last_s if tally.last_s is not None else self._now()
                    tally.lost_how = "sent no final ops after the stop"
        if close:
            self.finished = True
            self._watcher.kill(block=False)
            self.ops_file.close()
        self.write_status()

    def write_status(self) -> None:
        status = {
            "finished": self.finished,
            "at_s": self._now(),
            "workers": {w: asdict(t) for w, t in self.workers.items()},
        }
        partial = self.status_path + ".part"
        with open(partial, "w", encoding="utf-8") as f:
            json.dump(status, f)
        os.replace(partial, self.status_path)  # readers never see half a file


def is_worker(environment: Any) -> bool:
    return isinstance(environment.runner, WorkerRunner)


def is_local(environment: Any) -> bool:
    return isinstance(environment.runner, LocalRunner)
