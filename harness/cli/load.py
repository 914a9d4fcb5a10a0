"""`tokenproof load`: a Locust load run that ends in the checkers' verdict."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from harness.cli import common
from harness.cli.app import main
from harness.cli.common import err
from harness.load.duration import BadDuration, parse_duration, spell_duration
from harness.verdict import EXIT_CODES

if TYPE_CHECKING:
    from harness.load.report import LoadReport


class Duration(click.ParamType):  # type: ignore[type-arg]
    """Seconds, or Locust's forms: 10s, 5m, 1h30m."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            seconds = parse_duration(str(value))
        except BadDuration as exc:
            self.fail(str(exc), param, ctx)
        if seconds > 86_400:
            self.fail(f"{value!r} is longer than a day (24h): split the session", param, ctx)
        return seconds


DURATION = Duration()


@main.command()
@common.postgres_options
@click.option("--users", type=click.IntRange(1, 100_000), default=100)
@click.option("--spawn-rate", type=click.FloatRange(0.1), default=20.0)
@click.option(
    "--duration",
    "duration_s",
    type=DURATION,
    default="60",
    metavar="TIME",
    help="How long: seconds (90) or Locust's forms (10s, 5m, 1h30m); at most 24h.",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    help="Locust processes on this machine (a master and this many workers when above 1).",
)
@click.option(
    "--expect-workers",
    type=click.IntRange(0, 1000),
    default=0,
    metavar="N",
    help="Wait for N workers started elsewhere (`tokenproof load-worker`) before starting; "
    "set --master-bind-host to an address they reach.",
)
@click.option(
    "--expect-workers-within",
    "expect_workers_within_s",
    type=DURATION,
    default="120",
    metavar="TIME",
    help="Give up (exit 2) if the workers have not all connected by then.",
)
@click.option(
    "--stop-on-violation",
    is_flag=True,
    help="End the run at the first violation seen while it runs (5xx, internal error text, "
    "a negative balance, a ledger that does not explain a balance).",
)
@click.option("--webhook-chaos", is_flag=True, help="Duplicate, delay, drop and forge webhooks.")
@click.option(
    "--headless/--web",
    default=True,
    help="--web opens Locust's UI (http://127.0.0.1:8089) for an interactive session.",
)
@click.option(
    "--web-host",
    default="127.0.0.1",
    metavar="ADDR",
    help="Address Locust's web UI listens on (anything but loopback is warned about).",
)
@click.option("--web-port", type=click.IntRange(1, 65535), default=8089)
@click.option(
    "--master-bind-host",
    default="127.0.0.1",
    metavar="ADDR",
    help="Address the Locust master listens on (anything but loopback is warned about).",
)
@click.option(
    "--master-bind-port",
    type=click.IntRange(1, 65535),
    default=None,
    metavar="PORT",
    help="Port the master listens on [default: a free one on loopback, else 5557].",
)
@common.target_options
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Locust's HTML and CSV, and load.json with the verdict "
    "(default: tokenproof's cache, load/<target>; the path is printed).",
)
@common.config_option
def load(
    postgres: common.PostgresChoice,
    users: int,
    spawn_rate: float,
    duration_s: int,
    processes: int,
    expect_workers: int,
    expect_workers_within_s: int,
    stop_on_violation: bool,
    webhook_chaos: bool,
    headless: bool,
    web_host: str,
    web_port: int,
    master_bind_host: str,
    master_bind_port: int | None,
    report_dir: Path | None,
    config_path: Path | None,
    **target_args: Any,
) -> None:
    """Run a Locust load against a target, then check every invariant.

    The target options not given come from the configuration file, as for verify.

    The ops are checked as they arrive and once the run has settled. Exit 1 if
    any invariant broke or any request answered 5xx (each is listed), 2 if a
    checker could not decide or the run could not start.

    Over several machines: here `--expect-workers N --master-bind-host ADDR`,
    there `tokenproof load-worker --master-host ADDR` (docs/load.md).
    """
    from harness.load.process import exposure_warnings
    from harness.load.report import LoadSettings
    from harness.load.run import check_settings, fresh_default_report_dir, run_load
    from harness.target.start import open_target

    def body() -> int:
        spec, settings = common.target_from_options(config_path, target_args, postgres)
        # The options carry LoadSettings' field names.
        options = click.get_current_context().params
        load_settings = LoadSettings(
            **{f.name: options[f.name] for f in fields(LoadSettings) if f.name in options}
        )
        check_settings(load_settings)
        for warning in exposure_warnings(load_settings):
            err.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        out_dir = report_dir or fresh_default_report_dir(spec.label)
        with open_target(spec, settings, on_info=lambda m: err.print(m)) as target:
            where = (
                f"waiting for {expect_workers} worker(s) on {master_bind_host}"
                if expect_workers
                else f"{processes} process(es)"
            )
            err.print(
                f"locust: {users} users, {spell_duration(duration_s)}, {where}"
                + (", webhook chaos" if webhook_chaos else "")
            )
            with common.live_lines() as show:
                report = run_load(
                    target,
                    load_settings,
                    out_dir,
                    on_progress=lambda p: show(p.line(err.width - 1)),
                )
        return _conclude(report, out_dir)

    common.run_command(body)


def _conclude(report: LoadReport, out_dir: Path) -> int:
    """Write load.json, print the figures and the verdict; the exit code."""
    (out_dir / "load.json").write_text(json.dumps(report.to_json(), indent=2, default=str))
    for line in report.endpoint_lines():
        err.print(line)
    if report.settings.distributed:
        err.print(report.worker_line(), soft_wrap=True)
    if report.stopped_early:
        err.print(report.stopped_early, soft_wrap=True)
    for violation in report.violations[:20]:
        err.print(f"[red]{violation.invariant}[/]: {violation.message}", soft_wrap=True)
    for result in report.results:
        if result.error:
            err.print(f"[yellow]checker {result.checker} crashed[/]:\n{result.error}")
    colour = {"pass": "green", "fail": "red", "error": "yellow"}[report.verdict]
    count = f" ({len(report.violations)})" if report.violations else ""
    err.print(
        f"{report.requests_checked} requests checked; verdict: "
        f"[{colour}]{report.verdict}[/]{count} {report.verdict_after_s:.1f} s after the stop"
    )
    err.print(f"reports written to {out_dir}")
    return EXIT_CODES[report.verdict]


@main.command("load-worker")
@click.option(
    "--master-host",
    required=True,
    metavar="ADDR",
    help="Address of the machine running `tokenproof load --expect-workers N`.",
)
@click.option(
    "--master-port", type=click.IntRange(1, 65535), default=5557, show_default=True, metavar="PORT"
)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    help="Worker processes on this machine (each counts toward --expect-workers).",
)
def load_worker(master_host: str, master_port: int, processes: int) -> None:
    """Generate load for a `tokenproof load` master on another machine.

    The worker gets everything from the master (target, users, secrets, seed)
    and sends its requests back to it over Locust's messages: nothing is shared
    on disk. It runs until the master ends the run.
    """
    from harness.load.process import run_worker

    def body() -> int:
        err.print(f"load-worker: connecting to the master at {master_host}:{master_port}")
        code = run_worker(master_host, master_port, processes)
        err.print(f"load-worker: done (Locust exit {code})")
        return common.EXIT_OK if code == 0 else common.EXIT_SETUP

    common.run_command(body)


@main.command("locustfile")
def locustfile() -> None:
    """Print the path of tokenproof's Locust file, for teams that start Locust
    workers themselves: `locust --worker -f "$(tokenproof locustfile)"
    --master-host ADDR` (the master is `tokenproof load --expect-workers N`,
    which hands the workers the run's configuration; see docs/load.md)."""
    from harness.load.process import LOCUSTFILE

    click.echo(str(LOCUSTFILE))
