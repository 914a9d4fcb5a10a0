"""A verify run's result (`RunReport`, its verdict and report.json) and the terminal table."""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.contract import citation
from harness.problems import Problem, group
from harness.run.reproduce import reproduce_command
from harness.run.runner import ScenarioReport
from harness.verdict import Verdict, worst

SLOWEST = 5  # intents named in the settle-lag line


@dataclass
class RunReport:
    target: str
    seed: int
    run_id: str
    scenarios: list[ScenarioReport]
    command: list[str]
    # The service's own words for the contract's routes and answers (its dialect),
    # so evidence written with the contract's names can be read back in its own.
    dialect: dict[str, Any] | None = None

    @property
    def verdict(self) -> Verdict:
        """`fail` if any scenario found a violation, whatever else could not run
        (a finding must never hide behind an error); `error` only when nothing
        failed and something could not run."""
        return worst(s.status for s in self.scenarios)

    @property
    def could_not_run(self) -> list[ScenarioReport]:
        return [s for s in self.scenarios if s.status == "error"]

    def reproduce(self, item: ScenarioReport) -> str:
        return reproduce_command(self.command, item.scenario.id, self.seed)

    @functools.cached_property
    def problems(self) -> list[Problem]:
        """The violations grouped into the likely defects behind them (harness.problems),
        once: the scenarios are final when the report is made."""
        return group([(s.scenario.id, s.violations) for s in self.scenarios if s.violations])

    @property
    def headline(self) -> str:
        """ "N problems (M violations in K scenarios)"."""
        failed = [s for s in self.scenarios if s.violations]
        violations = sum(len(s.violations) for s in failed)
        return (
            f"{plural(len(self.problems), 'problem')} ({plural(violations, 'violation')} "
            f"in {plural(len(failed), 'scenario')})"
        )

    def problem_reproduce(self, problem: Problem) -> str:
        """The command that replays the problem's smallest showing: its scenario
        with the fewest requests."""
        shown = [s for s in self.scenarios if s.scenario.id in problem.scenarios]
        smallest = min(shown, key=lambda s: (s.op_count, s.duration_s))
        return self.reproduce(smallest)

    def problem_json(self, problem: Problem) -> dict[str, Any]:
        return {
            "title": problem.title,
            "headline": problem.headline,
            "kind": problem.kind,
            "phase": problem.phase,
            "invariants": problem.invariants,
            "contract": sorted({citation(i).clause for i in problem.invariants}),
            "scenarios": problem.scenarios,
            "reproduce": self.problem_reproduce(problem),
            "violations": [
                {"scenario": s.scenario, **s.violation.to_json()} for s in problem.shown
            ],
        }

    def settle_lag(self) -> dict[str, Any]:
        """How long the scenarios waited for the service's rows to converge after
        webhook deliveries settled, and the intents credited latest after their
        acknowledged delivery: the service's webhook-to-credit latency."""
        settled = [s for s in self.scenarios if s.settling is not None]
        waits = sorted(s.settling.waited_s for s in settled if s.settling is not None)
        lags = sorted(
            (
                (lag, pi, s.scenario.id)
                for s in settled
                if s.settling is not None
                for pi, lag in s.settling.lags
            ),
            reverse=True,
        )
        return {
            "scenarios": len(waits),
            "median_wait_s": round(statistics.median(waits), 3) if waits else None,
            "max_wait_s": round(waits[-1], 3) if waits else None,
            "late_intents": len(lags),
            "slowest": [
                {"intent": pi, "scenario": sid, "lag_s": round(lag, 3)}
                for lag, pi, sid in lags[:SLOWEST]
            ],
            "not_converged": [
                s.scenario.id
                for s in settled
                if s.settling is not None and not s.settling.converged
            ],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "target": self.target,
            "seed": self.seed,
            "run_id": self.run_id,
            "could_not_run": [s.scenario.id for s in self.could_not_run],
            "headline": self.headline,
            "problems": [self.problem_json(p) for p in self.problems],
            "settle": self.settle_lag(),
            **({"dialect": self.dialect} if self.dialect else {}),
            "scenarios": [{**s.to_json(), "reproduce": self.reproduce(s)} for s in self.scenarios],
        }


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def error_line(text: str) -> str:
    """The line that says what went wrong: a traceback's last line, also after
    a heading such as "checker reconciliation crashed:"; else the first line."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].startswith("Traceback"):
        return lines[-1].strip()
    if lines[0].endswith(":") and len(lines) > 1 and lines[1].startswith("Traceback"):
        return f"{lines[0]} {lines[-1].strip()}"
    return lines[0]


def settle_line(report: RunReport) -> str:
    """One line on the service's settle lag (see `RunReport.settle_lag`)."""
    lag = report.settle_lag()
    if not lag["scenarios"]:
        return "settle: no scenario got as far as settling"
    line = (
        f"settle: waited median {lag['median_wait_s'] * 1000:.0f} ms, "
        f"max {lag['max_wait_s'] * 1000:.0f} ms over {lag['scenarios']} scenarios"
    )
    if not lag["late_intents"]:
        line += "; no intent was credited after the first read"
    else:
        slowest = ", ".join(
            f"{x['intent']} {x['lag_s'] * 1000:.0f} ms ({x['scenario']})" for x in lag["slowest"]
        )
        line += f"; {lag['late_intents']} intents credited after the 2xx, slowest: {slowest}"
    if lag["not_converged"]:
        line += f"; did not converge: {', '.join(lag['not_converged'])}"
    return line


def print_table(report: RunReport, console: Console) -> None:
    table = Table(title=f"tokenproof verify: {report.target} (seed {report.seed})")
    table.add_column("scenario")
    table.add_column("result")
    table.add_column("ops", justify="right")
    table.add_column("time", justify="right")
    table.add_column("violations")
    colors = {"pass": "green", "fail": "red", "error": "yellow"}
    for s in report.scenarios:
        detail = "; ".join(f"{v.invariant}: {v.message}" for v in s.violations[:3])
        if s.error:
            detail = error_line(s.error)
        table.add_row(
            s.scenario.id,
            f"[{colors[s.status]}]{s.status}[/]",
            str(s.op_count),
            f"{s.duration_s:.1f} s",
            detail,
        )
    console.print(table)
    console.print(settle_line(report), highlight=False, soft_wrap=True)
    if report.dialect:
        # Evidence names the contract's routes (tip, purchase, ...): say them in
        # the service's own words once.
        routes = ", ".join(f"{k} = {v}" for k, v in report.dialect["routes"].items())
        console.print(f"dialect {report.dialect['name']}: {routes}", highlight=False)
    for s in report.scenarios:
        if s.status != "pass":
            console.print(f"[bold]{s.scenario.id}[/] reproduce: {report.reproduce(s)}")
    if report.could_not_run:
        console.print(
            f"[yellow]{len(report.could_not_run)} scenario(s) could not run:[/] "
            + ", ".join(s.scenario.id for s in report.could_not_run)
        )
    console.print(f"verdict: [{colors[report.verdict]}]{report.verdict}[/]")
    problems = report.problems
    if problems:
        console.print(f"[bold]{report.headline}[/]", highlight=False)
        for number, problem in enumerate(problems, start=1):
            line = (
                f"  {number}. {problem.headline} [{', '.join(problem.invariants)}] "
                f"in {len(problem.scenarios)} scenario(s); reproduce: "
                f"{report.problem_reproduce(problem)}"
            )
            console.print(escape(line), highlight=False, soft_wrap=True)
