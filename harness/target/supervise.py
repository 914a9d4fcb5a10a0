"""Watching the service across a run's scenarios, in one place.

A service tokenproof started and that exited is started again before the next
scenario, and its exit is reported once, on the scenario it happened in. A
service it did not start (`--target-url`) that stops answering is reported
once too, and the scenarios after it are listed as not run until it answers
again, rather than failing request by request.
"""

from __future__ import annotations

import asyncio

from harness.checkers import Violation
from harness.history import Op
from harness.target.types import ServiceCrash, Target


class Supervisor:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.went_down_in: str | None = None  # the scenario a --target-url service died in

    async def not_ready(self) -> str | None:
        """Why the next scenario cannot run (None: it can)."""
        if self.went_down_in is not None and not await self.target.answers():
            return f"not run: the service stopped answering during {self.went_down_in}"
        self.went_down_in = None
        return None

    async def restart_if_exited(self) -> bool:
        """Start a service that exited in an earlier scenario; True when it did."""
        return await asyncio.to_thread(self.target.ensure_running)

    async def findings(self, scenario_id: str, ops: list[Op]) -> list[Violation]:
        """What happened to the service during the scenario (after settling: a
        crash while webhooks were delivered is this scenario's)."""
        crash = self.target.crash_report()
        if crash is not None:
            return [crashed(crash, ops)]
        if self.target.process is None and not await self.target.answers():
            self.went_down_in = scenario_id
            return [unreachable(self.target)]
        return []


def crashed(crash: ServiceCrash, ops: list[Op]) -> Violation:
    """The service tokenproof started exited by itself during the scenario."""
    unknown = [op for op in ops if op.type == "info"]
    return Violation(
        "service-crashed",
        f"the service process exited during the scenario ({crash.how}); "
        f"{len(unknown)} requests got no answer. It was restarted for the next scenario.",
        {
            "exit": crash.how,
            "log_tail": crash.log_tail,
            "ops_in_flight": [op.to_json() for op in unknown[:20]],
        },
    )


def unreachable(target: Target) -> Violation:
    return Violation(
        "service-unreachable",
        f"the service at {target.base_url} stopped answering GET /health during this "
        "scenario; later scenarios run only once it answers again",
        {"url": target.base_url},
    )
