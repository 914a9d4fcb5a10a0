"""`TargetSpec`: which service to verify (the reference, a command tokenproof
starts, an image, a URL already running), built from command-line options or
a configuration file by `TargetSpec.from_options`, for the CLI and the pytest
plugin alike. `harness.target.start.open_target` turns one into a running target."""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.dialect.model import CONTRACT, Dialect
from harness.dialect.parse import load_dialect, parse_dialect
from harness.errors import UsageError
from harness.provisioning.emulator import (
    DEFAULT_WEBHOOK_SECRET,
)
from harness.target.options import flag_of

TargetKind = Literal["reference", "command", "image", "url"]
DEFAULT_START_TIMEOUT_S = 60.0
# How long after webhook deliveries settle a service may take to show their
# effects (a queue worker under load credits seconds later).
DEFAULT_SETTLE_TIMEOUT_S = 10.0
QUIET_MIN_S = 0.05
QUIET_MAX_S = 5.0
TYPICAL_OVER = 64  # settlings the typical lag is the median of


@dataclass
class SettlePolicy:
    """A target's settle deadline, and what it has shown of its lag so far.

    A queue worker may act on an acknowledged delivery after the service's 2xx,
    and a fast one usually looks synchronous: its rows are often right at the
    first read. So a read after new acknowledged deliveries counts as converged
    only once the rows have stayed unchanged for a quiet window, which a
    duplicate credited late or a late failure overwriting a credit would break:
    QUIET_MIN_S for a service that has never credited after its 2xx; once one
    has, twice its typical lag (the median over the last TYPICAL_OVER settlings
    with new deliveries, 0 where the credits were in place at once), and twice the
    longest lag the current settling saw (one retry of the slow step), at most
    QUIET_MAX_S and half the timeout, so a slow fault in one scenario does not
    slow every later one. A read with nothing newly acknowledged and nothing
    owed pays one read (see harness.run.settle.poll)."""

    timeout_s: float = DEFAULT_SETTLE_TIMEOUT_S
    # The longest lag of each recent settling with new deliveries (0: the
    # credits were in place at the first read), for the typical lag.
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=TYPICAL_OVER))
    # Per scope read (a users' prefix): acknowledged deliveries at its last
    # convergence (see harness.run.settle.poll).
    acked: dict[str, int] = field(default_factory=dict)

    def quiet_s(self, current_lag_s: float = 0.0) -> float:
        # A service that never credited after its 2xx has only lags of 0: QUIET_MIN_S.
        typical = statistics.median(self.lags) if self.lags else 0.0
        longest = 2 * max(current_lag_s, typical)
        return min(QUIET_MAX_S, self.timeout_s / 2, max(QUIET_MIN_S, longest))

    def settled(self, scope: str | None, acked: int, lag_s: float | None) -> None:
        """One settling of `scope` ended with `acked` acknowledged deliveries;
        `lag_s`: the longest lag it saw (0: every credit was in place at once),
        None when it had no new delivery to learn from."""
        if scope is not None:
            self.acked[scope] = acked
        if lag_s is not None:
            self.lags.append(lag_s)


@dataclass(frozen=True)
class TargetSpec:
    kind: TargetKind
    flaw: str | None = None
    command: str | None = None
    cwd: str | None = None
    image: str | None = None
    pull: bool = False  # --pull: pull `image` first (tokenproof never pulls unasked)
    schema: tuple[Path, ...] = ()
    url: str | None = None
    database_url: str | None = None
    jwt_secret: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    stripe_port: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S  # a started service, until /health answers
    settle_timeout_s: float = DEFAULT_SETTLE_TIMEOUT_S  # see SettlePolicy
    dialect: Dialect = CONTRACT  # read from dialect_path
    dialect_path: Path | None = None

    def server_url(self, database_url: str | None) -> str | None:
        """The PostgreSQL server tokenproof creates its databases on: --database-url,
        except with --target-url, where that URL is the service's own database."""
        return None if self.kind == "url" else database_url

    @property
    def label(self) -> str:
        if self.kind == "reference":
            return f"reference:{self.flaw}" if self.flaw else "reference"
        if self.kind == "command":
            return f"command: {self.command}"
        if self.kind == "image":
            return f"image: {self.image}"
        return f"url: {self.url}"

    @classmethod
    def from_options(
        cls,
        *,
        target: str = "reference",
        command: str | None = None,
        cwd: str | None = None,
        image: str | None = None,
        pull: bool = False,
        env: Sequence[str] = (),
        schema: Sequence[Path] = (),
        url: str | None = None,
        database_url: str | None = None,
        jwt_secret: str | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        stripe_port: int | None = None,
        start_timeout_s: float | None = None,
        settle_timeout_s: float | None = None,
        dialect: str | Path | Mapping[str, Any] | None = None,
    ) -> TargetSpec:
        """The target that command-line options (CLI or pytest) ask for, or a
        `UsageError` that says which options go together."""
        _check_together(command=command, cwd=cwd, image=image, pull=pull, schema=schema, url=url)
        extra_env = _parse_env(env)
        if settle_timeout_s is not None and settle_timeout_s <= 0:
            raise UsageError(f"--settle-timeout must be above 0 seconds, not {settle_timeout_s:g}")
        settle = settle_timeout_s or DEFAULT_SETTLE_TIMEOUT_S
        spoken = _spoken(dialect)
        if extra_env and url:
            raise UsageError("--target-env goes with a service tokenproof starts, not --target-url")
        if command or image:
            return cls(
                "command" if command else "image",
                command=command,
                cwd=cwd,
                image=image,
                pull=pull,
                schema=tuple(Path(p) for p in schema),
                extra_env=extra_env,
                start_timeout_s=start_timeout_s or DEFAULT_START_TIMEOUT_S,
                settle_timeout_s=settle,
                **spoken,
            )
        if url:
            if not database_url or not jwt_secret:
                raise UsageError(
                    "--target-url needs --database-url (its database) and --jwt-secret"
                )
            return cls(
                "url",
                url=url,
                database_url=database_url,
                jwt_secret=jwt_secret,
                webhook_secret=webhook_secret,
                stripe_port=stripe_port,
                settle_timeout_s=settle,
                **spoken,
            )
        name, _, flaw = target.partition(":")
        if name != "reference":
            raise UsageError(
                f"unknown target {target!r}; use reference[:FLAW], --target-command, "
                "--target-image or --target-url"
            )
        if spoken:
            raise UsageError(
                "--dialect describes your service's words; the reference speaks the contract's "
                "(give --target-command, --target-image or --target-url with it)"
            )
        return cls("reference", flaw=flaw or None, extra_env=extra_env, settle_timeout_s=settle)

    def cli_args(self) -> list[str]:
        """The options that select this target again, for reproduction commands
        (flags from the one table of them, harness/target/options.py)."""
        dialect = [flag_of("dialect"), str(self.dialect_path)] if self.dialect_path else []
        return self._target_args() + dialect + self._timing_args()

    def _timing_args(self) -> list[str]:
        args = []
        if self.kind in ("command", "image") and self.start_timeout_s != DEFAULT_START_TIMEOUT_S:
            args += [flag_of("start_timeout_s"), f"{self.start_timeout_s:g}"]
        if self.settle_timeout_s != DEFAULT_SETTLE_TIMEOUT_S:
            args += [flag_of("settle_timeout_s"), f"{self.settle_timeout_s:g}"]
        return args

    def _target_args(self) -> list[str]:
        env = [a for k, v in self.extra_env.items() for a in (flag_of("env"), f"{k}={v}")]
        schemas = [a for schema in self.schema for a in (flag_of("schema"), str(schema))]
        if self.kind == "reference":
            return [flag_of("target"), self.label, *env]
        if self.kind == "command":
            cwd = [flag_of("cwd"), self.cwd] if self.cwd else []
            return [flag_of("command"), str(self.command), *env, *cwd, *schemas]
        if self.kind == "image":
            # --pull too: on another machine the image may not be there yet.
            pull = [flag_of("pull")] if self.pull else []
            return [flag_of("image"), str(self.image), *pull, *env, *schemas]
        return [
            flag_of("url"),
            str(self.url),
            "--database-url",
            "<dsn>",
            flag_of("jwt_secret"),
            "<secret>",
            flag_of("webhook_secret"),
            "<secret>",
        ]


def _check_together(
    *,
    command: str | None,
    cwd: str | None,
    image: str | None,
    pull: bool,
    schema: Sequence[Path],
    url: str | None,
) -> None:
    """A `UsageError` naming the options that do not go together."""
    if len([x for x in (command, image, url) if x]) > 1:
        raise UsageError(
            "give one of --target-command, --target-image and --target-url, not several"
        )
    for path in schema:
        if not Path(path).is_file():
            raise UsageError(f"--target-schema {path} is not a readable file")
    if cwd and not command:
        raise UsageError("--target-cwd goes with --target-command (an image has its own WORKDIR)")
    if schema and not (command or image):
        raise UsageError("--target-schema goes with --target-command or --target-image")
    if pull and not image:
        raise UsageError("--pull goes with --target-image")


def _parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not key.replace("_", "").isalnum():
            raise UsageError(f"--target-env {pair!r}: give KEY=VALUE, e.g. TOKENPROOF_DEFECT=x")
        env[key] = value
    return env


def _spoken(dialect: str | Path | Mapping[str, Any] | None) -> dict[str, Any]:
    """The dialect file's reading (or a configuration file's `[dialect]` tables), as
    TargetSpec fields (none: the contract)."""
    if dialect is None or str(dialect) == "":
        return {}
    if isinstance(dialect, Mapping):
        return {"dialect": parse_dialect(dialect, source="[dialect] of the configuration file")}
    path = Path(dialect)
    return {"dialect": load_dialect(path), "dialect_path": path.resolve()}
