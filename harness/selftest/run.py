"""Prove the harness: every flawed variant caught, the reference clean.

The matrix holds, per variant and suite, whether a scenario caught it and the
scenario time and number of ops until the first violation (a suite stops at
its first catch: the rest would say nothing new).
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.model import steps_text
from harness.provisioning import PostgresSettings
from harness.run.options import RunOptions
from harness.run.runner import ScenarioReport, run_scenario
from harness.run.scenario import load_suites
from harness.target.start import TargetSpec, open_target
from harness.verdict import Verdict, decide

REFERENCE = "reference"
# The suite each defect class belongs to: the quick tier runs only these.
HOME_SUITES: dict[str, tuple[str, ...]] = {
    "lost-update": ("race",),
    "no-funds-check": ("race",),
    "credit-on-purchase": ("race",),
    "webhook-not-idempotent": ("webhooks",),
    "retry-double-charge": ("retry",),
    "early-webhook-dropped": ("webhooks",),
    "lock-order-deadlock": ("race",),
    "lenient-amounts": ("inputs",),
    "negative-deduct": ("inputs",),
    "self-tip": ("security",),
    "tip-retry-double-debit": ("retry",),
    "connection-held-across-stripe": ("faults",),
    "leaky-errors": ("security",),
    "unsigned-webhook": ("webhooks",),
    "jwt-no-exp": ("security",),
    "ignores-canceled": ("threeds",),
    "key-not-in-metadata": ("retry",),
    "clock-source-id": ("race",),
    "leading-zero-amounts": ("inputs",),
    "leaky-database-errors": ("faults",),
}


@dataclass(frozen=True)
class Cell:
    variant: str
    suite: str
    caught: bool
    scenario: str | None = None
    seconds: float = 0.0  # scenario time until the first violation
    ops: int = 0  # ops sent until the first violation
    errors: tuple[str, ...] = ()
    invariants: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. the model suite's shrunk sequence length
    evidence: str = ""  # the first violation's message (the reproduction is in verify)
    shrunk_steps: int | None = None  # the model suite: length of the shrunk sequence

    def figures(self) -> list[str]:
        """What a catch cost: the time, then the shrunk length (the model, whose op
        count includes its shrinking) or the ops sent."""
        if self.shrunk_steps is not None:
            return [f"{self.seconds:.1f} s", f"shrunk to {steps_text(self.shrunk_steps)}"]
        return [f"{self.seconds:.1f} s", f"{self.ops} ops"]

    def to_json(self) -> dict[str, Any]:
        lists = {k: list(getattr(self, k)) for k in ("errors", "invariants", "notes")}
        return {**asdict(self), **lists, "seconds": round(self.seconds, 3)}


@dataclass
class SelftestReport:
    seed: int
    suites: list[str]
    cells: list[Cell] = field(default_factory=list)

    def variants(self) -> list[str]:
        return list(dict.fromkeys(c.variant for c in self.cells))

    def caught(self, variant: str) -> bool:
        return any(c.caught for c in self.cells if c.variant == variant)

    @property
    def verdict(self) -> Verdict:
        """fail: a false alarm on the reference, or a flaw missed by suites that
        ran; error: the reference or a missed flaw's suites could not run."""
        reference = [c for c in self.cells if c.variant == REFERENCE]
        missed = [v for v in self.variants() if v != REFERENCE and not self.caught(v)]

        def errored(variant: str) -> bool:
            return any(c.errors for c in self.cells if c.variant == variant)

        return decide(
            violated=any(c.caught for c in reference) or any(not errored(v) for v in missed),
            undecided=any(c.errors for c in reference) or bool(missed),
        )

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "seed": self.seed,
            "suites": self.suites,
            "model_summary": self.model_summary(),
            "cells": [c.to_json() for c in self.cells],
        }

    def model_summary(self) -> str | None:
        """Which variants the model suite found on its own, and how short it made them."""
        cells = [c for c in self.cells if c.suite == "model" and c.variant != REFERENCE]
        if not cells:
            return None
        found = [c for c in cells if c.caught]
        lengths = sorted(c.shrunk_steps for c in found if c.shrunk_steps is not None)
        text = f"model suite: found {len(found)} of {len(cells)} variants"
        if lengths:
            text += (
                f"; shrunk sequences: median {statistics.median(lengths):g} steps, "
                f"{sum(n <= 6 for n in lengths)} of {len(lengths)} at most 6"
            )
        return text

    def markdown(self) -> str:
        header = "| variant | " + " | ".join(self.suites) + " |"
        lines = [header, "|" + " --- |" * (len(self.suites) + 1)]
        for variant in self.variants():
            row = [variant]
            for suite in self.suites:
                cell = next(
                    (c for c in self.cells if c.variant == variant and c.suite == suite), None
                )
                row.append(_cell_text(cell, variant))
            lines.append("| " + " | ".join(row) + " |")
        summary = self.model_summary()
        if summary:
            lines += ["", summary]
        return "\n".join(lines) + "\n"


def _cell_text(cell: Cell | None, variant: str) -> str:
    if cell is None:
        return " "
    if cell.caught:
        return "caught " + " / ".join(cell.figures())
    if cell.errors:
        return "error"
    return "clean" if variant == REFERENCE else "-"


def suite_cell(variant: str, suite: str, reports: list[ScenarioReport]) -> Cell:
    seconds, ops = 0.0, 0
    errors = []
    for report in reports:
        seconds += report.duration_s
        ops += report.op_count
        if report.status == "error":
            errors.append(f"{report.scenario.id}: {(report.error or '').splitlines()[0]}")
        if report.status == "fail":
            return Cell(
                variant,
                suite,
                True,
                report.scenario.id,
                seconds,
                ops,
                tuple(errors),
                tuple(sorted({v.invariant for v in report.violations})),
                tuple(report.notes),
                report.violations[0].message[-4000:] if report.violations else "",
                _shrunk_steps(report),
            )
    return Cell(variant, suite, False, None, seconds, ops, tuple(errors))


def _shrunk_steps(report: ScenarioReport) -> int | None:
    for violation in report.violations:
        steps = violation.evidence.get("steps")
        if isinstance(steps, int):
            return steps
    return None


def run_selftest(
    variants: list[str],
    suites: list[str] | None,
    postgres: PostgresSettings,
    *,
    seed: int = 1,
    quick: bool = False,
    on_cell: Callable[[Cell], None] = lambda _: None,
    on_info: Callable[[str], None] = lambda _: None,
    on_progress: Callable[[str, str, str], None] = lambda *_: None,
) -> SelftestReport:
    """`on_progress(variant, suite, text)` hears from long scenarios (the model
    suite spends minutes shrinking each failure it finds)."""
    all_suites = load_suites()
    # The model suite shrinks every failure it finds (minutes per variant): it
    # joins the matrix only when asked for with --suite.
    chosen = suites or [name for name in all_suites if name != "model"]
    report = SelftestReport(seed, chosen)
    for variant in variants:
        spec = TargetSpec("reference", flaw=None if variant == REFERENCE else variant)
        names = chosen
        if quick and variant != REFERENCE:
            names = [s for s in chosen if s in HOME_SUITES[variant]]
        with open_target(spec, postgres, seed=seed, on_info=on_info) as target:
            run_id = secrets.token_hex(3)
            for suite in names:
                options = RunOptions(
                    on_progress=functools.partial(on_progress, variant, suite),
                )
                reports = []
                for item in all_suites[suite]:
                    result = asyncio.run(
                        run_scenario(target, item, seed=seed, run_id=run_id, options=options)
                    )
                    reports.append(result)
                    if result.status == "fail" and variant != REFERENCE:
                        break
                cell = suite_cell(variant, suite, reports)
                report.cells.append(cell)
                on_cell(cell)
    return report
