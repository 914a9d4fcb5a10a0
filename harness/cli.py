"""`tokenproof ...`: a thin layer over the library API.

Exit codes: 0 every invariant held, 1 violations found, 2 usage or setup error
(the message says what to fix).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from harness import __version__
from harness.emulator.command import stripe_emulator
from harness.emulator.defaults import DEFAULT_WEBHOOK_SECRET
from harness.errors import SetupError, TokenproofError, UsageError
from harness.provisioning import PostgresSettings, make_cluster

if TYPE_CHECKING:
    from harness.selftest import Cell
    from harness.targets import TargetSpec

EXIT_OK, EXIT_VIOLATIONS, EXIT_SETUP = 0, 1, 2

err = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _signals_as_exit() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into SystemExit so that `finally` blocks stop servers.

    Ctrl-C already arrives as KeyboardInterrupt; a timeout wrapper or a CI
    runner usually sends SIGTERM, whose default action would skip all cleanup.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def postgres_options(func: F) -> F:
    func = click.option(
        "--postgres-bin",
        metavar="DIR|auto",
        help="Use system PostgreSQL binaries from DIR ('auto': ask pg_config) "
        "instead of the embedded ones.",
    )(func)
    func = click.option(
        "--database-url",
        metavar="URL",
        envvar="TOKENPROOF_DATABASE_URL",
        help="Use an existing server (role needs CREATEDB); tokenproof creates and drops "
        "only databases named tokenproof_*. [env: TOKENPROOF_DATABASE_URL]",
    )(func)
    return click.option(
        "--postgres-port",
        type=int,
        metavar="PORT",
        help="Port for a server tokenproof starts (default: a free one).",
    )(func)


def config_option(func: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="Read options from this file (default: tokenproof.toml, or [tool.tokenproof] "
        "in pyproject.toml, in the current folder).",
    )(func)


def target_options(func: F) -> F:
    """The options that choose the service under test (verify, load)."""
    options = [
        click.option(
            "--target",
            "target_name",
            default="reference",
            show_default=True,
            metavar="reference[:FLAW]",
            help="The bundled reference service (or one with a defect put back).",
        ),
        click.option("--target-command", metavar="CMD", help="Start your service with this."),
        click.option("--target-cwd", metavar="DIR", help="Working directory for the command."),
        click.option(
            "--target-image",
            metavar="IMAGE[:TAG]",
            help="Start your service's container image (Docker) instead of a command.",
        ),
        click.option(
            "--pull",
            is_flag=True,
            help="Pull --target-image first (tokenproof never pulls unless asked).",
        ),
        click.option(
            "--target-env",
            multiple=True,
            metavar="KEY=VALUE",
            help="Extra environment for a service tokenproof starts (repeatable).",
        ),
        click.option(
            "--target-schema",
            multiple=True,
            type=click.Path(dir_okay=False, path_type=Path),
            help="SQL file(s) loaded into each fresh database for --target-command "
            "or --target-image.",
        ),
        click.option(
            "--target-url", metavar="URL", help="A service already running (give --database-url)."
        ),
        click.option(
            "--jwt-secret", metavar="S", help="JWT_SECRET of the service at --target-url."
        ),
        click.option(
            "--webhook-secret",
            default=DEFAULT_WEBHOOK_SECRET,
            show_default=True,
            help="STRIPE_WEBHOOK_SECRET of the service at --target-url.",
        ),
        click.option(
            "--stripe-port", type=click.IntRange(1, 65535), help="Emulator port for --target-url."
        ),
        click.option(
            "--service-start-timeout",
            type=click.FloatRange(1),
            metavar="SECONDS",
            help="How long a service tokenproof starts may take to answer /health (default 60).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _settings(
    postgres_bin: str | None, database_url: str | None, port: int | None
) -> PostgresSettings:
    return PostgresSettings.resolve(
        postgres_bin=postgres_bin, database_url=database_url, port=port, env={}
    )


class ScenarioLines:
    """Which scenario runs and for how long. In a terminal a live line whose
    clock ticks; in CI logs "running X ..." then its result, and progress lines
    of long scenarios between them."""

    COLORS = {"pass": "green", "fail": "red", "error": "yellow"}

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self._progressed = False
        self._status: Any = None
        self._ticker: Any = None

    def start(self, item: Any) -> None:
        if not self.live:
            self.console.print(f"[dim]running[/] {item.id} ...", end="")
            return
        from harness.load_progress import ProgressTicker

        self._status = self.console.status(f"running {item.id} ...")
        self._status.start()
        self._ticker = ProgressTicker(
            lambda s: self._status.update(f"running {item.id} ... {s:.0f} s"), every_s=1.0
        ).__enter__()

    def progress(self, text: str) -> None:
        self._progressed = True
        if self.live:
            self.console.print(f"  [dim]{text}[/]")
        else:
            self.console.print(f"\n  [dim]{text}[/]", end="")

    def done(self, report: Any) -> None:
        verdict = f"[{self.COLORS[report.status]}]{report.status}[/] ({report.duration_s:.1f} s)"
        if self.live:
            self._ticker.__exit__(None, None, None)
            self._status.stop()
            self.console.print(f"{report.scenario.id} {verdict}")
            return
        lead = "\n  " if self._progressed else " "
        self._progressed = False
        self.console.print(f"{lead}{verdict}")


@contextmanager
def _live_lines() -> Iterator[Callable[[str], None]]:
    """Progress of long work: in a terminal one live line, updated in place;
    elsewhere (CI logs) a plain line each time."""
    if not err.is_terminal:
        yield lambda text: err.print(f"[dim]{text}[/]", highlight=False)
        return
    from rich.live import Live
    from rich.text import Text

    with Live(Text(""), console=err, refresh_per_second=4, transient=True) as live:
        yield lambda text: live.update(Text(text, style="dim"))


def _run(body: Callable[[], int]) -> None:
    try:
        with _signals_as_exit():
            code = body()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted; everything tokenproof started has been stopped[/]")
        sys.exit(130)
    except (UsageError, SetupError, TokenproofError) as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(EXIT_SETUP)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tokenproof")
def main() -> None:
    """tokenproof: concurrency tests and verification for token ledgers paid through Stripe.

    It provisions PostgreSQL, a stateful Stripe emulator and the service under
    test, forces races and webhook orderings, and checks that no token is ever
    double credited, double charged, lost, or left unexplained by the ledger.
    """
    from harness.cache import keep_hypothesis_in_cache

    keep_hypothesis_in_cache()  # no .hypothesis/ in the user's working directory


@main.command()
@postgres_options
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
@click.option("--seed", type=int, default=1, show_default=True, help="Seed for ids and choices.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write report.json, junit.xml, history.jsonl and report.html here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout.")
@target_options
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
@config_option
def verify(
    postgres_bin: str | None,
    database_url: str | None,
    postgres_port: int | None,
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

    from harness.options import RunOptions
    from harness.report import print_table, write_reports
    from harness.scenario import select
    from harness.targets import open_target
    from harness.verify import verify as run_verify

    def body() -> int:
        nonlocal suites, scenarios_from, seed, report_dir, shrink_seconds
        given = _with_config(click.get_current_context(), config_path)
        suites, scenarios_from, seed = given["suites"], given["scenarios_from"], given["seed"]
        report_dir, shrink_seconds = given["report_dir"], given["shrink_seconds"]
        target_args.update({k: given[k] for k in target_args})
        spec = _target_spec(**target_args, database_url=database_url)
        chosen = select(
            [s.strip() for s in suites.split(",")] if suites else None,
            scenarios_from,
            scenario_ids,
        )
        lines = ScenarioLines(err)
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
        settings = _settings(
            postgres_bin, None if spec.kind == "url" else database_url, postgres_port
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
        print_table(report, err)
        if report_dir is not None:
            write_reports(report, report_dir)
            err.print(f"reports written to {report_dir}")
        if as_json:
            click.echo(json.dumps(report.to_json(), indent=2, default=str))
        return {"pass": EXIT_OK, "fail": EXIT_VIOLATIONS, "error": EXIT_SETUP}[report.verdict]

    _run(body)


# Configuration keys and the option (parameter name) each one fills, with how a
# file's value becomes the option's value.
CONFIG_OPTIONS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "target": ("target_name", str),
    "target_command": ("target_command", str),
    "target_cwd": ("target_cwd", str),
    "target_image": ("target_image", str),
    "target_schema": ("target_schema", lambda v: tuple(Path(p) for p in v)),
    "target_env": ("target_env", lambda v: tuple(f"{k}={x}" for k, x in v.items())),
    "target_url": ("target_url", str),
    "suites": ("suites", lambda v: ",".join(v)),
    "scenarios_from": ("scenarios_from", tuple),
    "seed": ("seed", int),
    "report": ("report_dir", Path),
    "shrink_seconds": ("shrink_seconds", float),
    "service_start_timeout": ("service_start_timeout", float),
}


def _with_config(ctx: click.Context, config_path: Path | None) -> dict[str, Any]:
    """The command's parameters, each one the user did not give taken from the
    configuration file when it has it (flags override the file)."""
    from click.core import ParameterSource

    from harness.config import resolve

    params = dict(ctx.params)
    given = {
        key: params[param]
        for key, (param, _) in CONFIG_OPTIONS.items()
        if param in params and ctx.get_parameter_source(param) is not ParameterSource.DEFAULT
    }
    resolved = resolve(Path.cwd(), given, config_path=config_path)
    for key, (param, convert) in CONFIG_OPTIONS.items():
        if resolved.sources.get(key, "command line") != "command line":
            params[param] = convert(resolved.values[key])
    params["_config"] = resolved
    return params


@main.command("config")
@config_option
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
        return EXIT_OK

    _run(body)


def _target_spec(
    target_name: str,
    target_command: str | None,
    target_cwd: str | None,
    target_image: str | None,
    pull: bool,
    target_env: tuple[str, ...],
    target_schema: tuple[Path, ...],
    target_url: str | None,
    database_url: str | None,
    jwt_secret: str | None,
    webhook_secret: str,
    stripe_port: int | None,
    service_start_timeout: float | None = None,
) -> TargetSpec:
    from harness.targets import TargetSpec

    return TargetSpec.from_options(
        start_timeout_s=service_start_timeout,
        target=target_name,
        command=target_command,
        cwd=target_cwd,
        image=target_image,
        pull=pull,
        env=target_env,
        schema=target_schema,
        url=target_url,
        database_url=database_url,
        jwt_secret=jwt_secret,
        webhook_secret=webhook_secret,
        stripe_port=stripe_port,
    )


@main.command()
@postgres_options
@click.option("--fan", default="fan-1", show_default=True, help="Demo fan to create and sign for.")
@click.option("--grant", type=click.IntRange(0, 10**9), default=1000, show_default=True)
def serve(
    postgres_bin: str | None,
    database_url: str | None,
    postgres_port: int | None,
    fan: str,
    grant: int,
) -> None:
    """Run PostgreSQL, the Stripe emulator and the reference service until Ctrl-C.

    Creates a fan (with a starting grant) and a creator `creator-1`, and prints
    the URLs and a bearer token for the fan, for trying the service by hand.
    """
    import asyncio

    import asyncpg

    import reference_impl
    from harness.auth import make_token
    from harness.provisioning import DatabaseFactory
    from harness.targets import ManagedTarget
    from harness.users import UserSpec, create_users

    def body() -> int:
        settings = _settings(postgres_bin, database_url, postgres_port)
        with make_cluster(settings) as cluster:
            factory = asyncio.run(DatabaseFactory.open(cluster, reference_impl.schema_files()))
            try:
                with ManagedTarget(factory) as target:

                    async def seed() -> None:
                        conn = await asyncpg.connect(target.database_url)
                        try:
                            await create_users(
                                conn,
                                [
                                    UserSpec(fan, grant=grant),
                                    UserSpec("creator-1", is_creator=True),
                                ],
                            )
                        finally:
                            await conn.close()

                    asyncio.run(seed())
                    click.echo(f"service:         {target.base_url}")
                    click.echo(f"stripe emulator: {target.emulator_url}  (/_control/state)")
                    click.echo(f"database:        {target.database_url}")
                    click.echo(
                        f"token for {fan}: {make_token(fan, target.jwt_secret, ttl_s=86400)}"
                    )
                    sys.stdout.flush()
                    err.print("Ctrl-C stops everything and deletes the data.")
                    threading.Event().wait()
            finally:
                asyncio.run(factory.close())
        return EXIT_OK

    _run(body)


@main.command()
@postgres_options
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
@click.option("--seed", type=int, default=1, show_default=True)
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
    postgres_bin: str | None,
    database_url: str | None,
    postgres_port: int | None,
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
    at least one scenario and the reference passes everything.
    """
    from harness.flaws import FLAWS
    from harness.scenario import select
    from harness.selftest import REFERENCE, run_selftest

    def body() -> int:
        unknown = [f for f in flaws if f not in FLAWS]
        if unknown:
            raise UsageError(f"unknown flaw {', '.join(unknown)}; choose from {', '.join(FLAWS)}")
        suite_names = [s.strip() for s in suites.split(",")] if suites else None
        select(suite_names)  # validates the names
        variants = ([] if no_reference else [REFERENCE]) + list(flaws or FLAWS)
        settings = _settings(postgres_bin, database_url, postgres_port)
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
        err.print("selftest: " + ("[green]pass[/]" if report.ok else "[red]fail[/]"))
        return EXIT_OK if report.ok else EXIT_VIOLATIONS

    _run(body)


def _cell_outcome(c: Cell) -> str:
    if c.caught:
        return f"[red]caught[/] by {c.scenario} ({', '.join(c.figures())})"
    if c.errors:
        return "[yellow]error[/] " + "; ".join(c.errors)
    return "clean"


@main.command()
@postgres_options
@click.option("--users", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--spawn-rate", type=click.FloatRange(0.1), default=20.0, show_default=True)
@click.option(
    "--duration", type=click.IntRange(1, 86_400), default=60, show_default=True, help="Seconds."
)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Locust processes (a master and this many workers when above 1).",
)
@click.option("--webhook-chaos", is_flag=True, help="Duplicate, delay, drop and forge webhooks.")
@click.option(
    "--headless/--web",
    default=True,
    show_default=True,
    help="--web opens Locust's UI (http://127.0.0.1:8089) for an interactive session.",
)
@click.option(
    "--web-host",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDR",
    help="Address Locust's web UI listens on (anything but loopback is warned about).",
)
@click.option("--web-port", type=click.IntRange(1, 65535), default=8089, show_default=True)
@click.option(
    "--master-bind-host",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDR",
    help="With --processes: address the Locust master listens on (for workers elsewhere).",
)
@target_options
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Locust's HTML and CSV, and load.json with the verdict "
    "(default: tokenproof's cache, load/<target>; the path is printed).",
)
def load(
    postgres_bin: str | None,
    database_url: str | None,
    postgres_port: int | None,
    users: int,
    spawn_rate: float,
    duration: int,
    processes: int,
    webhook_chaos: bool,
    headless: bool,
    web_host: str,
    web_port: int,
    master_bind_host: str,
    report_dir: Path | None,
    **target_args: Any,
) -> None:
    """Run a Locust load against a target, then check every invariant.

    Exit 1 if any invariant broke or any request answered 5xx (each is listed).
    """
    from harness.load import LoadSettings, exposure_warnings, fresh_default_report_dir, run_load
    from harness.targets import open_target

    def body() -> int:
        spec = _target_spec(**target_args, database_url=database_url)
        settings = _settings(
            postgres_bin, None if spec.kind == "url" else database_url, postgres_port
        )
        load_settings = LoadSettings(
            users=users,
            spawn_rate=spawn_rate,
            duration_s=duration,
            processes=processes,
            webhook_chaos=webhook_chaos,
            headless=headless,
            web_host=web_host,
            web_port=web_port,
            master_bind_host=master_bind_host,
        )
        for warning in exposure_warnings(load_settings):
            err.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        out_dir = report_dir or fresh_default_report_dir(spec.label)
        with open_target(spec, settings, on_info=lambda m: err.print(m)) as target:
            err.print(
                f"locust: {users} users, {duration} s, {processes} process(es)"
                + (", webhook chaos" if webhook_chaos else "")
            )
            with _live_lines() as show:
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
        return EXIT_OK if report.ok else EXIT_VIOLATIONS

    _run(body)


@main.command()
@click.option("--markdown", is_flag=True, help="Print scenarios/README.md.")
def scenarios(markdown: bool) -> None:
    """List the scenario suites and what each scenario forces and checks."""
    from harness.scenario import load_suites
    from harness.scenario import markdown as render

    suites = load_suites()
    if markdown:
        click.echo(render(suites), nl=False)
        return
    for suite, items in suites.items():
        click.echo(f"{suite}:")
        for item in items:
            click.echo(f"  {item.id:<48} {item.doc.splitlines()[0]}")


# Defined with the emulator (which imports nothing from the harness), so that
# `python -m harness.emulator` is the same command.
main.add_command(stripe_emulator)


@main.command()
@postgres_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON line with url, pid, data_dir."
)
def postgres(
    postgres_bin: str | None, database_url: str | None, postgres_port: int | None, as_json: bool
) -> None:
    """Start a throwaway PostgreSQL on loopback and serve until Ctrl-C.

    Prints the superuser URL. The data directory is deleted when it stops.
    """

    def body() -> int:
        settings = _settings(postgres_bin, database_url, postgres_port)
        if settings.source == "existing":
            raise UsageError("`tokenproof postgres` starts a server; drop --database-url")
        with make_cluster(settings) as cluster:
            info = {
                "url": cluster.admin_dsn,
                "pid": getattr(cluster, "pid", None),
                "data_dir": str(getattr(cluster, "workdir", "")),
            }
            if as_json:
                click.echo(json.dumps(info), nl=True)
                sys.stdout.flush()
            else:
                err.print(f"[green]ready:[/] {cluster.describe()}")
                click.echo(info["url"])
                err.print("Ctrl-C stops the server and deletes its data.")
            threading.Event().wait()  # until a signal ends us; cleanup is in `with`
        return EXIT_OK

    _run(body)
