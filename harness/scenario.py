"""Scenarios: plain data plus a short async function over a `Run`.

@scenario("race", users=[fan("fan", 100), creator("star")])
async def drain_one_fan(run: Run) -> None:
    "What it forces; what it checks; which defect it exists for."
    await run.gather(*(run.tip("fan", "star", 5) for _ in range(40)))
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import UsageError
from harness.users import UserSpec

if TYPE_CHECKING:
    from harness.runner import Run

SUITE_MODULES = ("race", "retry", "threeds", "webhooks", "inputs", "security", "faults")


@dataclass(frozen=True)
class Scenario:
    name: str
    suite: str
    users: tuple[UserSpec, ...]
    body: Callable[[Run], Awaitable[None]]
    doc: str
    checkers: tuple[str, ...] | None = None  # None: every checker
    timeout_s: float = 60.0

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"


REGISTRY: dict[str, Scenario] = {}


def fan(name: str, grant: int = 0) -> UserSpec:
    return UserSpec(name, is_creator=False, grant=grant)


def creator(name: str, grant: int = 0) -> UserSpec:
    return UserSpec(name, is_creator=True, grant=grant)


def scenario(
    suite: str,
    *,
    users: list[UserSpec],
    checkers: tuple[str, ...] | None = None,
    timeout_s: float = 60.0,
) -> Callable[[Callable[[Run], Awaitable[None]]], Callable[[Run], Awaitable[None]]]:
    def register(body: Callable[[Run], Awaitable[None]]) -> Callable[[Run], Awaitable[None]]:
        name = body.__name__.replace("_", "-")
        if not body.__doc__:
            raise UsageError(
                f"scenario {suite}/{name} needs a docstring: what it forces and checks"
            )
        item = Scenario(name, suite, tuple(users), body, body.__doc__.strip(), checkers, timeout_s)
        if item.id in REGISTRY:
            raise UsageError(f"scenario {item.id} is defined twice; give one a new name")
        REGISTRY[item.id] = item
        return body

    return register


def load_suites() -> dict[str, list[Scenario]]:
    for module in SUITE_MODULES:
        try:
            importlib.import_module(f"scenarios.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"scenarios.{module}":
                raise
    suites: dict[str, list[Scenario]] = {}
    for item in REGISTRY.values():
        suites.setdefault(item.suite, []).append(item)
    return suites


def select(suite_names: list[str] | None) -> list[Scenario]:
    suites = load_suites()
    if not suite_names:
        return [s for name in suites for s in suites[name]]
    unknown = [n for n in suite_names if n not in suites]
    if unknown:
        raise UsageError(
            f"unknown suite {', '.join(unknown)}; choose from {', '.join(sorted(suites))}"
        )
    return [s for name in suite_names for s in suites[name]]
