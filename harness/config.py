"""Configuration in the ecosystem's place: `[tool.tokenproof]` in a service's
`pyproject.toml`, or `tokenproof.toml` for services in other languages.

The file is found in the current folder (a `tokenproof.toml` wins over a
`pyproject.toml`), validated by a schema (pydantic) so that an unknown key or
a wrong type is an error naming the key and the file, and resolved once into
plain values; command-line options override it. Paths in the file are
relative to the file's folder.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from harness.errors import UsageError
from harness.target.options import TARGET_OPTIONS, TargetOption

CONFIG_FILES = ("tokenproof.toml", "pyproject.toml")


class ConfigError(UsageError):
    """The configuration file cannot be used as it is; the message names the key."""


class _RunKeys(BaseModel):
    """The keys of a run that are not the target's (kebab-case, as on the command line)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    suites: list[str] | None = None
    scenarios_from: list[str] | None = Field(None, alias="scenarios-from")
    seed: int | None = None
    report: str | None = None
    shrink_seconds: float | None = Field(None, alias="shrink-seconds", ge=1)


def _file_field(option: TargetOption) -> Any:
    """A target option's key in the file: its type there, and its bounds."""
    types: dict[str, Any] = {
        "text": str,
        "many": list[str],
        "paths": list[str],
        "env": dict[str, str],
        "seconds": float,
    }
    if option.param == "dialect":  # a file's path, or the dialect's tables inline
        return (str | dict[str, Any] | None, Field(None, alias=option.file_key))
    if option.kind != "seconds":
        return (types[option.kind] | None, Field(None, alias=option.file_key))
    if option.minimum is None:
        return (float | None, Field(None, alias=option.file_key, gt=0))
    return (float | None, Field(None, alias=option.file_key, ge=option.minimum))


FILE_TARGET_OPTIONS = {o.file_key.replace("-", "_"): o for o in TARGET_OPTIONS if o.file_key}
# The keys a configuration file may hold: the run's, and the target options'
# that have a file key (harness/target/options.py, the one table of them).
FileConfig = create_model(
    "FileConfig",
    __base__=_RunKeys,
    **{key: _file_field(option) for key, option in FILE_TARGET_OPTIONS.items()},
)


# Keys whose values are paths, relative to the configuration file's folder.
PATH_KEYS = ("target_cwd", "target_schema", "report", "dialect")

# Each key's option: its parameter name (the target keys' are
# `TargetSpec.from_options`' keywords), and how a file's value becomes what the
# option would have given.
OPTIONS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    **{key: (option.param, option.from_file) for key, option in FILE_TARGET_OPTIONS.items()},
    "suites": ("suites", lambda v: ",".join(v)),
    "scenarios_from": ("scenarios_from", tuple),
    "seed": ("seed", int),
    "report": ("report_dir", Path),
    "shrink_seconds": ("shrink_seconds", float),
}
TARGET_KEYS = frozenset(FILE_TARGET_OPTIONS)


@dataclass(frozen=True)
class Resolved:
    """Each value the run will use, and where it came from (a file, an option, a default)."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    file: Path | None = None

    def options(self, *, only_target: bool = False) -> dict[str, Any]:
        """The values by parameter name, as the options would have given them.
        `only_target`: just the keys that say which service, for
        `TargetSpec.from_options(**resolved.options(only_target=True), ...)`."""
        options = {}
        for key, value in self.values.items():
            if only_target and key not in TARGET_KEYS:
                continue
            param, from_file = OPTIONS[key]
            options[param] = value if self.sources[key] == "command line" else from_file(value)
        return options


def find_config(folder: Path) -> Path | None:
    for name in CONFIG_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if name == "pyproject.toml" and "tokenproof" not in _read(path).get("tool", {}):
            continue
        return path
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not readable TOML: {exc}") from exc


def load_file(path: Path) -> BaseModel:
    data = _read(path)
    section = data.get("tool", {}).get("tokenproof", {}) if path.name == "pyproject.toml" else data
    where = "[tool.tokenproof] of " if path.name == "pyproject.toml" else ""
    try:
        return FileConfig.model_validate(section)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{where}{path}: {problems}") from exc


def resolve(
    folder: Path, options: Mapping[str, Any], *, config_path: Path | None = None
) -> Resolved:
    """The file's values (if a file is found) overridden by `options` (only the
    ones the user gave; None means not given)."""
    path = config_path or find_config(folder)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path is not None:
        parsed = load_file(path)
        for key, value in parsed.model_dump(exclude_none=True).items():
            values[key] = _relative(key, value, path.parent)
            sources[key] = str(path)
    for key, value in options.items():
        if value is None or value == () or value == []:
            continue
        values[key] = value
        sources[key] = "command line"
    return Resolved(values, sources, path)


def _relative(key: str, value: Any, base: Path) -> Any:
    if key not in PATH_KEYS or isinstance(value, dict):
        return value
    if isinstance(value, list):
        return [str((base / v).resolve()) for v in value]
    return str((base / value).resolve())
