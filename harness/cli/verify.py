"""`tokenproof verify`, `tokenproof config` and `tokenproof scenarios`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from harness.cli import common
from harness.cli.app import main
from harness.cli.common import err
from harness.errors import UsageError
from harness.verdict import EXIT_CODES

if TYPE_CHECKING:
    from harness.report import RunReport


@main.command()
@common.postgres_options
@click.option(
    "--suite",
    "suites",
    metavar="NAME[,NAME...]",
    help="Suites to run (default: all): race, retry, threeds, webhooks, inputs, security,"
    " faults, model.",
)
@click.option(
    "--scenario",
    "scenario_ids",
    multiple=True,
    metavar="SUITE/NAME",
    help="Run only this scenario (repeatable); reproduction commands use it.",
)
@click.option(
    "--scenarios-from",
    multiple=True,
    metavar="MODULE",
    help="Also run the scenarios of this Python module (repeatable): a team's own, "
    "written with harness.api.",
)
@click.option("--seed", type=int, default=1, help="Seed for ids and choices.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write report.json, junit.xml, history.jsonl and report.html here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout.")
@common.target_options
@click.option(
    "--examples", type=click.IntRange(1), help="Model suite: Hypothesis examples (deep runs)."
)
@click.option("--steps", type=click.IntRange(1), help="Model suite: steps per example.")
@click.option(
    "--shrink-seconds",
    type=click.FloatRange(1),
    help="Model suite: how long to shrink a failure before reporting the shortest "
    "failing sequence reached (default 30).",
)
@common.config_option
def verify(
    postgres: common.PostgresChoice,
    suites: str | None,
    scenario_ids: tuple[str, ...],
    scenarios_from: tuple[str, ...],
    seed: int,
    report_dir: Path | None,
    as_json: bool,
    examples: int | None,
    steps: int | None,
    shrink_seconds: float | None,
    config_path: Path | None,
    **target_args: Any,
) -> None:
    """Run the scenario suites against a target and check every invariant.

    The default target is the bundled reference service on an embedded
    PostgreSQL. With --target-url, --database-url is the target's own database.
    Options not given come from tokenproof.toml or [tool.tokenproof] in
    pyproject.toml in the current folder (`tokenproof config` shows them).
    Exit 0: every invariant held; 1: violations; 2: usage or setup error.
    """
    import asyncio

    from harness.run.options import RunOptions
    from harness.run.scenario import select
    from harness.run.verify import verify as run_verify
    from harness.target.start import open_target

    def body() -> int:
        nonlocal suites, scenarios_from, seed, report_dir, shrink_seconds
        given = common.with_config(click.get_current_context(), config_path)
        suites, scenarios_from, seed = given["suites"], given["scenarios_from"], given["seed"]
        report_dir, shrink_seconds = given["report_dir"], given["shrink_seconds"]
        spec, settings = common.target_from_options(config_path, target_args, postgres, given)
        chosen = select(
            [s.strip() for s in suites.split(",")] if suites else None,
            scenarios_from,
            scenario_ids,
        )
        lines = common.ScenarioLines(err)
        options = RunOptions(
            model_examples=examples,
            model_steps=steps,
            model_shrink_s=shrink_seconds,
            scenarios_from=scenarios_from,
            on_progress=lines.progress,
        )
        if options.model_args() and not any(s.model_budget for s in chosen):
            raise UsageError(
                "--examples, --steps and --shrink-seconds size the model suite; add --suite model"
            )
        with open_target(
            spec, settings, seed=seed, on_info=lambda m: err.print(m), log_dir=report_dir
        ) as target:
            report = asyncio.run(
                run_verify(
                    target,
                    chosen,
                    seed=seed,
                    spec=spec,
                    options=options,
                    on_start=lines.start,
                    on_done=lines.done,
                )
            )
        return _publish(report, report_dir, as_json)

    common.run_command(body)


def _publish(report: RunReport, report_dir: Path | None, as_json: bool) -> int:
    """The final table, the report files, report.json on stdout if asked; the
    exit code of the verdict."""
    from harness.report import print_table, write_reports

    print_table(report, err)
    if report_dir is not None:
        write_reports(report, report_dir)
        err.print(f"reports written to {report_dir}")
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, default=str))
    return EXIT_CODES[report.verdict]


@main.command("config")
@common.config_option
def config_command(config_path: Path | None) -> None:
    """Print the configuration a run in this folder would use, and where each value
    comes from (a file, or tokenproof's default)."""

    def body() -> int:
        from harness.config import FileConfig, resolve

        resolved = resolve(Path.cwd(), {}, config_path=config_path)
        where = resolved.file or "no tokenproof.toml or [tool.tokenproof] here"
        click.echo(f"# configuration file: {where}")
        for name, spec in FileConfig.model_fields.items():
            key = spec.alias or name
            if name in resolved.values:
                click.echo(
                    f"{key} = {json.dumps(resolved.values[name])}  # {resolved.sources[name]}"
                )
            else:
                click.echo(f"# {key}: not set (tokenproof's default)")
        return common.EXIT_OK

    common.run_command(body)


@main.command()
@click.option("--markdown", is_flag=True, help="Print scenarios/README.md.")
def scenarios(markdown: bool) -> None:
    """List the scenario suites and what each scenario forces and checks."""
    from harness.run.scenario import load_suites
    from harness.run.scenario import markdown as render

    suites = load_suites()
    if markdown:
        click.echo(render(suites), nl=False)
        return
    for suite, items in suites.items():
        click.echo(f"{suite}:")
        for item in items:
            click.echo(f"  {item.id:<48} {item.doc.splitlines()[0]}")
