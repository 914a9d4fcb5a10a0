"""Configuration files: found, validated by schema, overridden by flags."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.config import ConfigError, find_config, resolve


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Writes tokenproof.toml into a fresh folder and makes that the current one,
    as a team's repository is when they run tokenproof; returns the file."""

    def write(text: str) -> Path:
        path = tmp_path / "tokenproof.toml"
        path.write_text(text)
        monkeypatch.chdir(tmp_path)
        return path

    return write


def test_tokenproof_toml_is_read_with_paths_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "tokenproof.toml").write_text(
        'target-command = "node server.js"\ntarget-schema = ["db/schema.sql"]\n'
        'suites = ["race", "retry"]\nseed = 7\n[target-env]\nPOOL = "10"\n'
    )
    resolved = resolve(tmp_path, {})
    assert resolved.values.get("target_command") == "node server.js"
    assert resolved.values.get("target_schema") == [str(tmp_path / "db" / "schema.sql")]
    assert resolved.values.get("target_env") == {"POOL": "10"}
    assert resolved.sources["seed"] == str(tmp_path / "tokenproof.toml")


def test_the_target_keys_become_target_spec_options(tmp_path: Path) -> None:
    """One table serves the CLI and the pytest plugin: a file's values are
    converted to what the options give, the options' own pass as they are."""
    from harness.target.spec import TargetSpec

    (tmp_path / "tokenproof.toml").write_text(
        'target-command = "node server.js"\ntarget-schema = ["schema.sql"]\nseed = 7\n'
        'service-start-timeout = 90\n[target-env]\nPOOL = "10"\n'
    )
    (tmp_path / "schema.sql").write_text("select 1;")
    resolved = resolve(tmp_path, {"target_cwd": "/srv/app"})
    options = resolved.options(only_target=True)
    assert options == {
        "command": "node server.js",
        "schema": (tmp_path / "schema.sql",),
        "env": ("POOL=10",),
        "start_timeout_s": 90.0,
        "cwd": "/srv/app",
    }
    assert resolved.options()["seed"] == 7
    spec = TargetSpec.from_options(**options)
    assert (spec.kind, spec.command, spec.cwd, spec.extra_env) == (
        "command",
        "node server.js",
        "/srv/app",
        {"POOL": "10"},
    )


def test_flags_override_the_file(tmp_path: Path) -> None:
    (tmp_path / "tokenproof.toml").write_text("seed = 7\n")
    resolved = resolve(tmp_path, {"seed": 3, "suites": None})
    assert resolved.values.get("seed") == 3 and resolved.sources["seed"] == "command line"
    assert "suites" not in resolved.values


def test_pyproject_counts_only_with_a_tool_tokenproof_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "svc"\n')
    assert find_config(tmp_path) is None
    (tmp_path / "pyproject.toml").write_text('[tool.tokenproof]\ntarget = "reference"\n')
    assert resolve(tmp_path, {}).values.get("target") == "reference"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("sede = 7\n", "sede"),
        ('seed = "seven"\n', "seed"),
        ("shrink-seconds = 0\n", "shrink-seconds"),
    ],
)
def test_an_unknown_key_or_a_wrong_type_names_key_and_file(
    tmp_path: Path, text: str, named: str
) -> None:
    (tmp_path / "tokenproof.toml").write_text(text)
    with pytest.raises(ConfigError, match=named) as error:
        resolve(tmp_path, {})
    assert "tokenproof.toml" in str(error.value)


def test_broken_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "tokenproof.toml").write_text("seed = \n")
    with pytest.raises(ConfigError, match="not readable TOML"):
        resolve(tmp_path, {})


def test_a_load_run_takes_the_target_from_the_file_but_keeps_its_report(
    project: Callable[[str], Path],
) -> None:
    import click
    from click.core import ParameterSource

    from harness.cli.common import with_config
    from harness.cli.load import load

    config = project('target-command = "node server.js"\nreport = "reports/verify"\nseed = 9\n')
    ctx = click.Context(load)
    ctx.params = {"command": None, "report_dir": None, "seed": 1}
    for name in ctx.params:
        ctx.set_parameter_source(name, ParameterSource.DEFAULT)
    given = with_config(ctx, None, only_target=True)
    assert given["command"] == "node server.js"
    assert given["report_dir"] is None and given["seed"] == 1
    everything = with_config(ctx, None)
    assert everything["report_dir"] == config.parent / "reports" / "verify"


class _Options:
    """A pytest config as far as the plugin reads it: its options by flag."""

    def __init__(self, given: dict[str, object]) -> None:
        from harness.emulator.defaults import DEFAULT_WEBHOOK_SECRET

        self.given = {
            "--tokenproof-pull": False,
            "--webhook-secret": DEFAULT_WEBHOOK_SECRET,
            "--target-env": [],
            "--target-schema": [],
            **given,
        }

    def getoption(self, name: str) -> object:
        return self.given.get(name)


def test_the_plugin_has_an_option_for_every_target_key(pytestconfig: pytest.Config) -> None:
    from harness.config import TARGET_KEYS

    for key in TARGET_KEYS:
        pytestconfig.getoption("--" + key.replace("_", "-"))  # ValueError when missing


def test_the_plugin_and_the_file_choose_the_target_as_the_cli_does(
    project: Callable[[str], Path],
) -> None:
    from typing import cast

    from harness.pytest_plugin import target_spec_of

    config = project(
        'target-command = "node server.js"\nservice-start-timeout = 90\n[target-env]\nPOOL = "10"\n'
    )
    spec = target_spec_of(cast(pytest.Config, _Options({"--service-start-timeout": 5.0})))
    assert (spec.kind, spec.command, spec.start_timeout_s) == ("command", "node server.js", 5.0)
    assert spec.extra_env == {"POOL": "10"}
    assert target_spec_of(cast(pytest.Config, _Options({}))).start_timeout_s == 90.0
    config.unlink()
    assert target_spec_of(cast(pytest.Config, _Options({}))).kind == "reference"


def test_with_target_url_the_database_url_is_the_services_not_a_server_for_tokenproof() -> None:
    from harness.target.spec import TargetSpec

    url = "postgresql://app@127.0.0.1:5432/app"
    assert TargetSpec("url", url="http://127.0.0.1:8000").server_url(url) is None
    assert TargetSpec("reference").server_url(url) == url
    assert TargetSpec("command", command="node s.js").server_url(None) is None


def test_the_settle_timeout_comes_from_file_flag_or_default_and_is_reproduced(
    project: Callable[[str], Path],
) -> None:
    from typing import cast

    from harness.pytest_plugin import target_spec_of
    from harness.target.spec import DEFAULT_SETTLE_TIMEOUT_S

    config = project('target-command = "x"\nsettle-timeout = 25\n')
    assert target_spec_of(cast(pytest.Config, _Options({}))).settle_timeout_s == 25.0
    flagged = target_spec_of(cast(pytest.Config, _Options({"--settle-timeout": 3.0})))
    assert flagged.settle_timeout_s == 3.0
    assert flagged.cli_args()[-2:] == ["--settle-timeout", "3"]
    config.unlink()
    spec = target_spec_of(cast(pytest.Config, _Options({})))
    assert spec.settle_timeout_s == DEFAULT_SETTLE_TIMEOUT_S
    assert "--settle-timeout" not in spec.cli_args()


@pytest.mark.parametrize("value", ["0", "-1", '"ten"'])
def test_a_bad_settle_timeout_in_the_file_is_refused(tmp_path: Path, value: str) -> None:
    (tmp_path / "tokenproof.toml").write_text(f"settle-timeout = {value}\n")
    with pytest.raises(ConfigError, match="settle-timeout"):
        resolve(tmp_path, {})
