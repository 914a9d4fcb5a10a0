"""The model suite end to end: its budget reaches Hypothesis, and it finds a defect.

The selftest's quick tier leaves the model out (shrinking takes minutes), so this
is where CI proves the model can fail: on a variant without the funds check,
generation alone (no shrinking) must report a failing sequence.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest
from hypothesis import Phase, settings

import scenarios.model
from harness.model import CI_PROFILE, Tally, run_model
from harness.options import RunOptions
from harness.provisioning import DatabaseFactory
from harness.scenario import REGISTRY, load_suites
from harness.targets import ManagedTarget, Target
from harness.verify import verify


@pytest.fixture
def no_funds_check_target(reference_database_factory: DatabaseFactory) -> Iterator[Target]:
    command = (sys.executable, "-m", "harness.flaws", "no-funds-check")
    with ManagedTarget(reference_database_factory, command, name="no-funds-check") as target:
        yield target


def test_budget_and_progress_reach_the_run(
    reference_target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_suites()
    monkeypatch.setattr(scenarios.model, "PROGRESS_EVERY_S", 0.2)
    progress: list[str] = []
    options = RunOptions(model_examples=3, model_steps=4, on_progress=progress.append)
    model = REGISTRY["model/state-machine"]
    report = asyncio.run(verify(reference_target, [model], seed=3, options=options))
    assert report.verdict == "pass", report.to_json()
    [notes] = [s.notes for s in report.scenarios]
    examples = int(notes[0].split()[0])
    # The CI profile would run at least 25; a budget of 3 runs a handful.
    assert 3 <= examples < 10, notes
    assert progress and all("model checks" in line for line in progress)
    assert report.reproduce(report.scenarios[0]).endswith(
        "--examples 3 --steps 4 --scenario model/state-machine --seed 3"
    )


def test_model_finds_a_missing_funds_check(no_funds_check_target: Target) -> None:
    generate_only = settings(CI_PROFILE, phases=[Phase.explicit, Phase.generate])
    tally = Tally()
    outcome = run_model(no_funds_check_target, generate_only, seed=1, tally=tally)
    assert not outcome.passed
    assert outcome.steps is not None and outcome.steps >= 1
    assert "state = TokenModelRun()" in outcome.text
    assert "@reproduce_failure(" in outcome.text
    assert outcome.text.splitlines()[-1].startswith("AssertionError: "), outcome.text[-2000:]
    assert tally.examples >= 1
