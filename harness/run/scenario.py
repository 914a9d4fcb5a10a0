"""Scenarios: plain data plus a short async function over a `Run`.

@scenario("race", users=[fan("fan", 100), creator("star")])
async def drain_one_fan(run: Run) -> None:
    "What it forces; what it checks; which defect it exists for."
    await run.gather(*(run.tip("fan", "star", 5) for _ in range(40)))
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UsageError
from harness.run.options import RunOptions
from harness.target.users import UserSpec

if TYPE_CHECKING:
    from harness.run.context import Run

DEFAULT_TIMEOUT_S = 60.0  # a scenario's, unless it says otherwise
SUITE_MODULES = (
    "race",
    "retry",
    "threeds",
    "webhooks",
    "inputs",
    "security",
    "faults",
    "model",
)


@dataclass(frozen=True)
class Scenario:
    name: str
    suite: str
    users: tuple[UserSpec, ...]
    body: Callable[[Run], Awaitable[None]]
    doc: str
    checkers: tuple[str, ...] | None = None  # None: every checker
    timeout_s: float = DEFAULT_TIMEOUT_S
    # Its work grows with the run's model budget (--examples x --steps), and its
    # timeout with it.
    model_budget: bool = False

    def timeout_for(self, options: RunOptions) -> float:
        return self.timeout_s * (options.model_budget_factor if self.model_budget else 1.0)

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"


REGISTRY: dict[str, Scenario] = {}
BUNDLED_PACKAGE = "scenarios"


class ScenarioDefinitionError(UsageError):
    """A scenario is defined in a way that cannot work; the message says how to fix it."""


def fan(name: str, grant: int = 0) -> UserSpec:
    return UserSpec(name, is_creator=False, grant=grant)


def creator(name: str, grant: int = 0) -> UserSpec:
    return UserSpec(name, is_creator=True, grant=grant)


def stranger(name: str) -> UserSpec:
    """Someone with a validly signed token whom the service does not know: no
    `users` row (the contract answers 404 unknown user)."""
    return UserSpec(name, exists=False)


def scenario(
    suite: str,
    *,
    users: list[UserSpec],
    checkers: tuple[str, ...] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    model_budget: bool = False,
) -> Callable[[Callable[[Run], Awaitable[None]]], Callable[[Run], Awaitable[None]]]:
    def register(body: Callable[[Run], Awaitable[None]]) -> Callable[[Run], Awaitable[None]]:
        item = define(
            body,
            suite,
            users=users,
            checkers=checkers,
            timeout_s=timeout_s,
            model_budget=model_budget,
        )
        _register(item)
        return body

    return register


def _register(item: Scenario) -> None:
    """Into the registry; the same function again (a module imported twice) is no
    second definition."""
    if REGISTRY.setdefault(item.id, item).body is not item.body:
        raise ScenarioDefinitionError(
            f"scenario {item.id} is defined twice; give one of them another name"
        )


def define(
    body: Callable[[Run], Awaitable[None]],
    suite: str,
    *,
    users: Sequence[UserSpec],
    checkers: tuple[str, ...] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    model_budget: bool = False,
) -> Scenario:
    """A `Scenario` from its body, checked for the mistakes that cannot work."""
    name = body.__name__.removeprefix("test_").replace("_", "-")
    where = f"scenario {suite}/{name}"
    if not inspect.iscoroutinefunction(body):
        raise ScenarioDefinitionError(f"{where} must be an `async def` taking a Run")
    if not body.__doc__ or not body.__doc__.strip():
        raise ScenarioDefinitionError(
            f"{where} needs a docstring: what it forces and what it checks (reports show it)"
        )
    if not suite or "/" in suite:
        raise ScenarioDefinitionError(f"{where}: a suite name is a non-empty word without '/'")
    seen: set[str] = set()
    for user in users:
        if user.supabase_id in seen:
            raise ScenarioDefinitionError(
                f"{where} names the user {user.supabase_id!r} twice; give each user its own name"
            )
        seen.add(user.supabase_id)
    if checkers is not None:
        from harness.checkers import CHECKERS

        unknown = [c for c in checkers if c not in CHECKERS]
        if unknown:
            raise ScenarioDefinitionError(
                f"{where} names unknown checkers {unknown}; choose from {sorted(CHECKERS)}"
            )
    return Scenario(
        name, suite, tuple(users), body, body.__doc__.strip(), checkers, timeout_s, model_budget
    )


# Where `harness.testing.scenario_test` keeps a test function's scenario.
SCENARIO_ATTRIBUTE = "tokenproof_scenario"


def scenarios_in(module: object) -> list[Scenario]:
    """The `@scenario_test` scenarios a module defines."""
    found = (getattr(v, SCENARIO_ATTRIBUTE, None) for v in vars(module).values())
    return [s for s in found if isinstance(s, Scenario)]


def load_scenarios_from(modules: Sequence[str]) -> None:
    """Import team modules whose `@scenario` functions join the bundled suites."""
    # As `python -m` would: a team's modules are found from the folder it runs in.
    if modules and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    for module in modules:
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                raise UsageError(
                    f"--scenarios-from {module}: no such module; is its folder on PYTHONPATH "
                    "(or the current folder)?"
                ) from exc
            raise
        # Scenarios written as pytest tests (`@scenario_test`) join too.
        for item in scenarios_in(loaded):
            _register(item)


def load_suites(extra_modules: Sequence[str] = ()) -> dict[str, list[Scenario]]:
    """The bundled suites, then those of `extra_modules` (a team's own)."""
    for module in SUITE_MODULES:
        try:
            importlib.import_module(f"{BUNDLED_PACKAGE}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{BUNDLED_PACKAGE}.{module}":
                raise
    load_scenarios_from(extra_modules)
    suites: dict[str, list[Scenario]] = {}
    for item in REGISTRY.values():
        suites.setdefault(item.suite, []).append(item)
    return suites


def select(
    suite_names: Sequence[str] | None,
    extra_modules: Sequence[str] = (),
    scenario_ids: Sequence[str] = (),
) -> list[Scenario]:
    """The scenarios of these suites (all when None), narrowed to `scenario_ids`
    when given; unknown names are a UsageError that lists the known ones."""
    suites = load_suites(extra_modules)
    if not suite_names:
        chosen = [s for name in suites for s in suites[name]]
    else:
        unknown = [n for n in suite_names if n not in suites]
        if unknown:
            raise UsageError(
                f"unknown suite {', '.join(unknown)}; choose from {', '.join(sorted(suites))}"
            )
        chosen = [s for name in suite_names for s in suites[name]]
    if scenario_ids:
        missing = set(scenario_ids) - {s.id for s in chosen}
        if missing:
            raise UsageError(
                f"unknown scenario {', '.join(sorted(missing))}; "
                f"known: {', '.join(s.id for s in chosen)}"
            )
        chosen = [s for s in chosen if s.id in set(scenario_ids)]
    return chosen


def markdown(suites: dict[str, list[Scenario]]) -> str:
    """scenarios/README.md, generated from the scenarios' own docstrings."""
    lines = [
        "# Scenarios",
        "",
        "Generated by `tokenproof scenarios --markdown > scenarios/README.md` from each",
        "scenario's docstring (what it forces, what it checks, which defect it exists",
        "for); a test keeps this file in step with the code.",
        "",
        "Every scenario is checked by every checker (see docs/verify.md) unless it says",
        "otherwise, plus its own expectations.",
    ]
    for suite in SUITE_MODULES:
        if suite not in suites:
            continue
        lines += ["", f"## {suite}", ""]
        for item in suites[suite]:
            if not item.body.__module__.startswith(f"{BUNDLED_PACKAGE}."):
                continue  # a team's own scenarios are documented by the team
            doc = " ".join(item.doc.split())
            allowed = "" if item.checkers is None else " (5xx allowed: a fault is injected)"
            lines.append(f"- **{item.name}**{allowed}: {doc}")
    return "\n".join(lines + _contract_table()) + "\n"


def _contract_table() -> list[str]:
    """Which sentence of the target contract each invariant enforces."""
    from harness.contract import INVARIANTS

    lines = [
        "",
        "## The contract each invariant enforces",
        "",
        "Every invariant a checker or scenario can report, with the sentence of",
        "`docs/target-contract.md` it enforces (a test keeps each quote verbatim and",
        "every reported invariant in this table). Where the contract is silent, the",
        "harness demands nothing.",
        "",
        "| invariant | contract section | sentence |",
        "| --- | --- | --- |",
    ]
    for name, cited in sorted(INVARIANTS.items()):
        sentence = cited.clause.replace("|", "\\|")
        lines.append(f"| `{name}` | {cited.section} | {sentence} |")
    return lines
