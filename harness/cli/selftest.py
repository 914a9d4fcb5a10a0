"""`tokenproof selftest`: the suites against every flawed variant and the reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness.cli import common
from harness.cli.app import main
from harness.cli.common import err
from harness.errors import UsageError
from harness.verdict import EXIT_CODES

if TYPE_CHECKING:
    from harness.selftest.run import Cell


@main.command()
@common.postgres_options
@click.option(
    "--flaw",
    "flaws",
    multiple=True,
    metavar="NAME",
    help="Only this flawed variant (repeatable); default: every one.",
)
@click.option(
    "--suite",
    "suites",
    metavar="NAME[,NAME...]",
    help="Only these suites (default: all but model, which shrinks every failure it finds).",
)
@click.option("--seed", type=int, default=1)
@click.option(
    "--quick",
    is_flag=True,
    help="Each variant only against the suite made for its defect class (the CI tier).",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write selftest.json and matrix.md here.",
)
@click.option("--no-reference", is_flag=True, help="Skip the clean run of the reference.")
def selftest(
    postgres: common.PostgresChoice,
    flaws: tuple[str, ...],
    suites: str | None,
    seed: int,
    quick: bool,
    report_dir: Path | None,
    no_reference: bool,
) -> None:
    """Prove the harness: run the suites against every flawed variant and the reference.

    Prints a matrix (variant x suite: caught / missed, with the scenario time and
    ops until the first violation). Exit 0 only if every variant is caught by
    at least one scenario and the reference passes everything; 1 if a variant
    is missed by suites that ran or the reference fails; 2 if the reference or
    a missed variant's suites could not run (undecided, never a pass).
    """
    from harness.flaws import FLAWS
    from harness.run.scenario import select
    from harness.selftest.run import REFERENCE, run_selftest

    def body() -> int:
        unknown = [f for f in flaws if f not in FLAWS]
        if unknown:
            raise UsageError(f"unknown flaw {', '.join(unknown)}; choose from {', '.join(FLAWS)}")
        suite_names = [s.strip() for s in suites.split(",")] if suites else None
        select(suite_names)  # validates the names
        variants = ([] if no_reference else [REFERENCE]) + list(flaws or FLAWS)
        settings = postgres.settings()
        report = run_selftest(
            variants,
            suite_names,
            settings,
            seed=seed,
            quick=quick,
            on_cell=lambda c: err.print(f"{c.variant:<30} {c.suite:<9} {_cell_outcome(c)}"),
            on_progress=lambda variant, suite, text: err.print(
                f"[dim]{variant:<30} {suite:<9} {text}[/]"
            ),
        )
        click.echo(report.markdown(), nl=False)
        missed = [v for v in report.variants() if v != REFERENCE and not report.caught(v)]
        if missed:
            err.print(f"[red]missed:[/] {', '.join(missed)}")
        if report_dir is not None:
            report_dir.mkdir(parents=True, exist_ok=True)
            (report_dir / "selftest.json").write_text(json.dumps(report.to_json(), indent=2))
            (report_dir / "matrix.md").write_text(report.markdown())
        colour = {"pass": "green", "fail": "red", "error": "yellow"}[report.verdict]
        err.print(f"selftest: [{colour}]{report.verdict}[/]")
        return EXIT_CODES[report.verdict]

    common.run_command(body)


def _cell_outcome(c: Cell) -> str:
    if c.caught:
        return f"[red]caught[/] by {c.scenario} ({', '.join(c.figures())})"
    if c.errors:
        return "[yellow]error[/] " + "; ".join(c.errors)
    return "clean"
