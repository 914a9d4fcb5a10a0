"""`tokenproof load`: a Locust load run that ends in the checkers' verdict."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from harness.cli import common
from harness.cli.app import main
from harness.cli.common import err


@main.command()
@common.postgres_options
@click.option("--users", type=click.IntRange(1, 100_000), default=100)
@click.option("--spawn-rate", type=click.FloatRange(0.1), default=20.0)
@click.option(
    "--duration",
    "duration_s",
    type=click.IntRange(1, 86_400),
    default=60,
    help="Seconds.",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    help="Locust processes (a master and this many workers when above 1).",
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
    help="With --processes: address the Locust master listens on (for workers elsewhere).",
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
    postgres_bin: str | None,
    database_url: str | None,
    postgres_port: int | None,
    users: int,
    spawn_rate: float,
    duration_s: int,
    processes: int,
    webhook_chaos: bool,
    headless: bool,
    web_host: str,
    web_port: int,
    master_bind_host: str,
    report_dir: Path | None,
    config_path: Path | None,
    **target_args: Any,
) -> None:
    """Run a Locust load against a target, then check every invariant.

    The target options not given come from the configuration file, as for verify.

    Exit 1 if any invariant broke or any request answered 5xx (each is listed).
    """
    from harness.load import exposure_warnings, fresh_default_report_dir, run_load
    from harness.load_report import LoadSettings
    from harness.targets import TargetSpec, open_target

    def body() -> int:
        given = common.with_config(click.get_current_context(), config_path, only_target=True)
        target_args.update({k: given[k] for k in target_args})
        spec = TargetSpec.from_options(**target_args, database_url=database_url)
        settings = common.postgres_settings(
            postgres_bin, spec.server_url(database_url), postgres_port
        )
        # The options carry LoadSettings' field names.
        options = click.get_current_context().params
        load_settings = LoadSettings(
            **{f.name: options[f.name] for f in fields(LoadSettings) if f.name in options}
        )
        for warning in exposure_warnings(load_settings):
            err.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        out_dir = report_dir or fresh_default_report_dir(spec.label)
        with open_target(spec, settings, on_info=lambda m: err.print(m)) as target:
            err.print(
                f"locust: {users} users, {duration_s} s, {processes} process(es)"
                + (", webhook chaos" if webhook_chaos else "")
            )
            with common.live_lines() as show:
                report = run_load(
                    target, load_settings, out_dir, on_progress=lambda p: show(p.line())
                )
        (out_dir / "load.json").write_text(json.dumps(report.to_json(), indent=2, default=str))
        for line in report.endpoint_lines():
            err.print(line)
        for violation in report.violations[:20]:
            err.print(f"[red]{violation.invariant}[/]: {violation.message}")
        err.print(
            f"{report.requests_checked} requests checked; verdict: "
            + ("[green]pass[/]" if report.ok else f"[red]fail[/] ({len(report.violations)})")
        )
        err.print(f"reports written to {out_dir}")
        return common.EXIT_OK if report.ok else common.EXIT_VIOLATIONS

    common.run_command(body)


@main.command("locustfile")
def locustfile() -> None:
    """Print the path of tokenproof's Locust file, for teams that start Locust
    themselves: `locust -f "$(tokenproof locustfile)" ...` (it reads its run's
    configuration from the file TOKENPROOF_LOAD names; see docs/load.md)."""
    from harness.load import LOCUSTFILE

    click.echo(str(LOCUSTFILE))
