"""The model budget a run passes to its scenarios, and how the CLI takes it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.run.options import CI_MODEL_EXAMPLES, CI_MODEL_STEPS, RunOptions
from harness.run.scenario import Scenario


async def _noop(run: object) -> None:
    return None


def test_defaults_are_the_ci_profile() -> None:
    options = RunOptions()
    assert (options.examples, options.steps) == (CI_MODEL_EXAMPLES, CI_MODEL_STEPS)
    assert options.model_budget_factor == 1.0
    assert options.cli_args() == []


def test_a_deep_run_scales_the_model_timeout_only() -> None:
    deep = RunOptions(model_examples=500, model_steps=20)
    assert deep.model_budget_factor == 500 * 20 / (CI_MODEL_EXAMPLES * CI_MODEL_STEPS)
    model = Scenario("state-machine", "model", (), _noop, "doc", (), 900, model_budget=True)
    race = Scenario("drain", "race", (), _noop, "doc", None, 60)
    assert model.timeout_for(deep) == 900 * deep.model_budget_factor
    assert race.timeout_for(deep) == 60
    # A smaller budget never shortens the timeout below the CI profile's.
    assert model.timeout_for(RunOptions(model_examples=1, model_steps=1)) == 900


def test_reproduction_carries_the_budget() -> None:
    assert RunOptions(model_examples=500).cli_args() == ["--examples", "500"]
    assert RunOptions(model_steps=7).cli_args() == ["--steps", "7"]


def test_a_budget_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="model_examples"):
        RunOptions(model_examples=0)
    with pytest.raises(ValueError, match="model_steps"):
        RunOptions(model_steps=-1)


def test_cli_refuses_a_budget_without_the_model_suite() -> None:
    result = CliRunner().invoke(main, ["verify", "--suite", "race", "--examples", "3"])
    assert result.exit_code == 2
    assert "--suite model" in result.output


def test_cli_refuses_a_zero_budget() -> None:
    result = CliRunner().invoke(main, ["verify", "--suite", "model", "--steps", "0"])
    assert result.exit_code == 2
    assert "--steps" in result.output
