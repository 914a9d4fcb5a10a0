"""What every command shares: the console, exit codes, option groups,
configuration files, progress lines, and how a command body is run."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from harness.errors import SetupError, TokenproofError, UsageError
from harness.provisioning import PostgresSettings
from harness.target.options import TARGET_OPTIONS, TargetOption
from harness.verdict import EXIT_CODES

# The verdict is the exit code (harness.verdict); a setup failure exits as `error`.
EXIT_OK, EXIT_VIOLATIONS, EXIT_SETUP = EXIT_CODES["pass"], EXIT_CODES["fail"], EXIT_CODES["error"]

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


@dataclass(frozen=True)
class PostgresChoice:
    """Where PostgreSQL comes from (--postgres-bin, --database-url and
    --postgres-port), handed to a command as one parameter, `postgres`."""

    bin: str | None
    database_url: str | None
    port: int | None

    def settings(self, database_url: str | None = None) -> PostgresSettings:
        """`database_url`: the server to use instead of --database-url (for a
        target of its own, the server its database is on)."""
        return PostgresSettings.resolve(
            postgres_bin=self.bin,
            database_url=database_url if database_url is not None else self.database_url,
            port=self.port,
            env={},
        )


def postgres_options(func: F) -> F:
    """The PostgreSQL options, passed to `func` as `postgres: PostgresChoice`."""

    @functools.wraps(func)
    def with_choice(
        *args: Any,
        postgres_bin: str | None,
        database_url: str | None,
        postgres_port: int | None,
        **kwargs: Any,
    ) -> Any:
        choice = PostgresChoice(postgres_bin, database_url, postgres_port)
        return func(*args, postgres=choice, **kwargs)

    wrapped: Any = click.option(
        "--postgres-bin",
        metavar="DIR|auto",
        help="Use system PostgreSQL binaries from DIR ('auto': ask pg_config) "
        "instead of the embedded ones.",
    )(with_choice)
    wrapped = click.option(
        "--database-url",
        metavar="URL",
        envvar="TOKENPROOF_DATABASE_URL",
        help="Use an existing server (role needs CREATEDB); tokenproof creates and drops "
        "only databases named tokenproof_*. [env: TOKENPROOF_DATABASE_URL]",
    )(wrapped)
    decorated: F = click.option(
        "--postgres-port",
        type=int,
        metavar="PORT",
        help="Port for a server tokenproof starts (default: a free one).",
    )(wrapped)
    return decorated


def config_option(func: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="Read options from this file (default: tokenproof.toml, or [tool.tokenproof] "
        "in pyproject.toml, in the current folder).",
    )(func)


def target_options(func: F) -> F:
    """The options that choose the service under test (verify, load), made from
    the one table of them (`harness.target.options`)."""
    for option in reversed(TARGET_OPTIONS):
        func = _click_option(option)(func)
    return func


def _click_option(option: TargetOption) -> Callable[[F], F]:
    """One target option as click declares it."""
    kinds: dict[str, dict[str, Any]] = {
        "text": {},
        "flag": {"is_flag": True},
        "many": {"multiple": True},
        "env": {"multiple": True},
        "paths": {"multiple": True, "type": click.Path(dir_okay=False, path_type=Path)},
        "seconds": {
            "type": click.FloatRange(option.minimum, min_open=False)
            if option.minimum is not None
            else click.FloatRange(0, min_open=True)
        },
        "port": {"type": click.IntRange(1, 65535)},
    }
    extra = dict(kinds[option.kind])
    if option.default is not None:
        extra["default"] = option.default
    if option.metavar is not None:
        extra["metavar"] = option.metavar
    decorator: Callable[[F], F] = click.option(option.flag, option.param, help=option.help, **extra)
    return decorator


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
        from harness.load.progress import ProgressTicker

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
def live_lines() -> Iterator[Callable[[str], None]]:
    """Progress of long work: in a terminal one live line, updated in place;
    elsewhere (CI logs) a plain line each time."""
    if not err.is_terminal:
        # soft_wrap: a line longer than the console is a long line in the log, never two.
        yield lambda text: err.print(f"[dim]{text}[/]", highlight=False, soft_wrap=True)
        return
    from rich.live import Live
    from rich.text import Text

    with Live(Text(""), console=err, refresh_per_second=4, transient=True) as live:
        yield lambda text: live.update(Text(text, style="dim"))


def run_command(body: Callable[[], int]) -> None:
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


def with_config(
    ctx: click.Context, config_path: Path | None, *, only_target: bool = False
) -> dict[str, Any]:
    """The command's parameters, each one the user did not give taken from the
    configuration file when it has it (flags override the file). `only_target`:
    just the keys that say which service (a load run keeps its own report folder)."""
    from click.core import ParameterSource

    from harness.config import OPTIONS, resolve

    params = dict(ctx.params)
    given = {
        key: params[param]
        for key, (param, _) in OPTIONS.items()
        if param in params and ctx.get_parameter_source(param) is not ParameterSource.DEFAULT
    }
    resolved = resolve(Path.cwd(), given, config_path=config_path)
    params.update(resolved.options(only_target=only_target))
    return params


def target_from_options(
    config_path: Path | None,
    target_args: dict[str, Any],
    postgres: PostgresChoice,
    given: dict[str, Any] | None = None,
) -> tuple[Any, PostgresSettings]:
    """The target the options (and the configuration file's target keys) choose,
    and the PostgreSQL settings to start it with: `(TargetSpec, PostgresSettings)`.
    `given`: the command's options already resolved with the file (`with_config`)."""
    from harness.target.start import TargetSpec

    if given is None:
        given = with_config(click.get_current_context(), config_path, only_target=True)
    target_args.update({k: given[k] for k in target_args})
    spec = TargetSpec.from_options(**target_args, database_url=postgres.database_url)
    return spec, postgres.settings(spec.server_url(postgres.database_url))
