"""The options that choose the service under test, described once (pure).

From this table come the CLI's options (`harness.cli.common.target_options`),
the pytest plugin's (`harness.pytest_plugin`), the configuration file's keys
(`harness.config`) and the flags of reproduction lines
(`TargetSpec.cli_args`). Each option names the `TargetSpec.from_options`
keyword it fills.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.emulator.defaults import DEFAULT_WEBHOOK_SECRET

# text: one string; flag: on or off; many: repeatable strings; paths: repeatable
# paths; env: repeatable KEY=VALUE (a table in the file); seconds: a positive
# number of seconds; port: 1-65535.
Kind = Literal["text", "flag", "many", "paths", "env", "seconds", "port"]


@dataclass(frozen=True)
class TargetOption:
    flag: str  # on the command line
    param: str  # the keyword of TargetSpec.from_options
    kind: Kind
    help: str
    metavar: str | None = None
    default: Any = None
    # The key in tokenproof.toml / [tool.tokenproof]; None: not in the file
    # (secrets and one-off choices stay on the command line).
    file_key: str | None = None
    pytest_flag: str | None = None  # where pytest already has the flag (--tokenproof-pull)
    minimum: float | None = None  # seconds: at least this (None: above 0)

    @property
    def in_pytest(self) -> str:
        return self.pytest_flag or self.flag

    def from_file(self, value: Any) -> Any:
        """A file's value as the option would have given it."""
        converters: dict[Kind, Callable[[Any], Any]] = {
            "paths": lambda v: tuple(Path(p) for p in v),
            "env": lambda v: tuple(f"{k}={x}" for k, x in v.items()),
            "seconds": float,
            "many": tuple,
        }
        return converters.get(self.kind, lambda v: v)(value)


TARGET_OPTIONS: tuple[TargetOption, ...] = (
    TargetOption(
        "--target",
        "target",
        "text",
        "The bundled reference service (or one with a defect put back).",
        metavar="reference[:FLAW]",
        default="reference",
        file_key="target",
    ),
    TargetOption(
        "--target-command",
        "command",
        "text",
        "Start your service with this.",
        metavar="CMD",
        file_key="target-command",
    ),
    TargetOption(
        "--target-cwd",
        "cwd",
        "text",
        "Working directory for the command.",
        metavar="DIR",
        file_key="target-cwd",
    ),
    TargetOption(
        "--target-image",
        "image",
        "text",
        "Start your service's container image (Docker) instead of a command.",
        metavar="IMAGE[:TAG]",
        file_key="target-image",
    ),
    TargetOption(
        "--pull",
        "pull",
        "flag",
        "Pull --target-image first (tokenproof never pulls unless asked).",
        default=False,
        pytest_flag="--tokenproof-pull",
    ),
    TargetOption(
        "--target-env",
        "env",
        "env",
        "Extra environment for a service tokenproof starts (repeatable).",
        metavar="KEY=VALUE",
        file_key="target-env",
    ),
    TargetOption(
        "--target-schema",
        "schema",
        "paths",
        "SQL file(s) loaded into each fresh database for --target-command or --target-image.",
        metavar="FILE",
        file_key="target-schema",
    ),
    TargetOption(
        "--dialect",
        "dialect",
        "text",
        "The service's own words for the contract: routes, bodies, answers, status codes, "
        "its token and its SQL (docs/dialects.md).",
        metavar="FILE",
        file_key="dialect",
    ),
    TargetOption(
        "--target-url",
        "url",
        "text",
        "A service already running (give --database-url).",
        metavar="URL",
        file_key="target-url",
    ),
    TargetOption(
        "--jwt-secret", "jwt_secret", "text", "JWT_SECRET of the service at --target-url.", "S"
    ),
    TargetOption(
        "--webhook-secret",
        "webhook_secret",
        "text",
        "STRIPE_WEBHOOK_SECRET of the service at --target-url.",
        metavar="S",
        default=DEFAULT_WEBHOOK_SECRET,
    ),
    TargetOption("--stripe-port", "stripe_port", "port", "Emulator port for --target-url.", "PORT"),
    TargetOption(
        "--service-start-timeout",
        "start_timeout_s",
        "seconds",
        "How long a service tokenproof starts may take to answer /health (default 60).",
        metavar="SECONDS",
        file_key="service-start-timeout",
        minimum=1.0,
    ),
    TargetOption(
        "--settle-timeout",
        "settle_timeout_s",
        "seconds",
        "After webhook deliveries settle, how long the service may take to show their "
        "effects (a queue worker crediting later) before an intent still uncredited is "
        "reported (default 10).",
        metavar="SECONDS",
        file_key="settle-timeout",
    ),
)
BY_PARAM = {o.param: o for o in TARGET_OPTIONS}


def flag_of(param: str) -> str:
    """The command-line flag that sets `param` (for reproduction lines)."""
    return BY_PARAM[param].flag
