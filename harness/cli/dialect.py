"""`tokenproof dialect check`: try a target's dialect against the running service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.cli import common
from harness.cli.app import main
from harness.cli.common import err


@main.group()
def dialect() -> None:
    """A service's own words for the contract (docs/dialects.md)."""


@dialect.command("check")
@common.postgres_options
@common.target_options
@common.config_option
def check(
    postgres: common.PostgresChoice,
    config_path: Path | None,
    **target_args: Any,
) -> None:
    """Start the target (or reach it with --target-url), call every route of its
    dialect once with a harmless request, run every query, and print each part:
    how it is mapped, and whether it answered as the contract says. A part that
    did not costs the invariants it carries, listed per invariant. A part that
    answered, but not as the contract says, is DOUBTFUL: the mapping, or the
    service itself (verify runs on and its suites judge the service).

    Exit 0: every part answered as the contract says; 1: some part failed or is
    doubtful; 2: usage or setup error.
    """
    import asyncio
    import secrets

    from harness.target.dialect_check import check_dialect
    from harness.target.start import open_target

    def body() -> int:
        spec, settings = common.target_from_options(config_path, target_args, postgres)
        with open_target(spec, settings, on_info=lambda m: err.print(m), preflight=False) as t:
            report = asyncio.run(check_dialect(t, run_id=secrets.token_hex(3)))
        source = spec.dialect.source or "the contract (no dialect given)"
        click.echo(f"dialect: {spec.dialect.name} ({source})")
        for line in report.lines():
            click.echo(line)
        verdict = "pass" if report.ok else "fail" if not report.usable else "doubtful"
        click.echo(f"dialect check: {verdict}")
        return common.EXIT_OK if report.ok else common.EXIT_VIOLATIONS

    common.run_command(body)
