"""One table of target options (harness/target/options.py) makes the CLI's
options, the pytest plugin's, the configuration file's keys and the
reproduction line's flags: none of them can drift from it."""

from __future__ import annotations

import argparse
from pathlib import Path

import click
import pytest

from harness.cli.app import main
from harness.config import OPTIONS, TARGET_KEYS, ConfigError, load_file
from harness.pytest_plugin import pytest_addoption
from harness.target.options import TARGET_OPTIONS
from harness.target.spec import TargetSpec

pytestmark = pytest.mark.unit


def _params(command: str) -> dict[str, click.Option]:
    found = main.commands[command].params
    return {p.name: p for p in found if isinstance(p, click.Option) and p.name}


@pytest.mark.parametrize("command", ["verify", "load"])
def test_every_target_option_is_a_cli_option_of_its_name(command: str) -> None:
    params = _params(command)
    for option in TARGET_OPTIONS:
        assert option.param in params, option.flag
        assert option.flag in params[option.param].opts
        assert params[option.param].help == option.help


class _Group:
    def __init__(self) -> None:
        self.flags: dict[str, dict[str, object]] = {}

    def addoption(self, flag: str, **kwargs: object) -> None:
        self.flags[flag] = kwargs


class _Parser:
    def __init__(self) -> None:
        self.group = _Group()

    def getgroup(self, name: str) -> _Group:
        return self.group


def test_every_target_option_is_a_pytest_option() -> None:
    parser = _Parser()
    pytest_addoption(parser)  # type: ignore[arg-type]
    for option in TARGET_OPTIONS:
        assert option.in_pytest in parser.group.flags, option.flag
        if option.file_key:  # the file fills in what was not given
            assert parser.group.flags[option.in_pytest]["default"] in (None, [], False)


def test_the_file_keys_are_the_table_s_and_read_as_the_options_give_them(tmp_path: Path) -> None:
    keyed = {o.file_key.replace("-", "_"): o for o in TARGET_OPTIONS if o.file_key}
    assert set(keyed) == set(TARGET_KEYS)
    assert all(OPTIONS[key][0] == option.param for key, option in keyed.items())
    file = tmp_path / "tokenproof.toml"
    file.write_text('target-env = {A = "1"}\nsettle-timeout = 3\ntarget-schema = ["s.sql"]\n')
    parsed = load_file(file).model_dump(exclude_none=True)
    assert keyed["target_env"].from_file(parsed["target_env"]) == ("A=1",)
    file.write_text("service-start-timeout = 0.5\n")  # the CLI refuses it too
    with pytest.raises(ConfigError, match=r"service-start-timeout|service_start_timeout"):
        load_file(file)


def test_reproduction_lines_use_the_table_s_flags(tmp_path: Path) -> None:
    flags = {o.flag for o in TARGET_OPTIONS} | {"--database-url"}
    schema = tmp_path / "s.sql"
    schema.write_text("SELECT 1;")
    specs = [
        TargetSpec.from_options(target="reference:lost-update", env=["A=1"], settle_timeout_s=3),
        TargetSpec.from_options(command="node s.js", cwd="svc", schema=[schema]),
        TargetSpec.from_options(image="shop/api:1", pull=True, start_timeout_s=90),
        TargetSpec.from_options(url="http://h:1", database_url="postgresql://x", jwt_secret="s"),
    ]
    for spec in specs:
        used = {a for a in spec.cli_args() if a.startswith("--")}
        assert used and used <= flags, used - flags
    # What the line says parses back into the same target.
    parser = argparse.ArgumentParser()
    for option in TARGET_OPTIONS:
        many = option.kind in ("many", "paths", "env")
        if option.kind == "flag":
            parser.add_argument(option.flag, dest=option.param, action="store_true")
        elif many:
            parser.add_argument(option.flag, dest=option.param, action="append")
        else:
            parser.add_argument(option.flag, dest=option.param)
    args = vars(parser.parse_args(specs[2].cli_args()))
    again = TargetSpec.from_options(
        image=args["image"], pull=args["pull"], start_timeout_s=float(args["start_timeout_s"])
    )
    assert again == specs[2]
