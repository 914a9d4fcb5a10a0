"""The selftest matrix and the model suite's summary, from hand-made cells."""

from __future__ import annotations

import pytest

from harness.selftest.run import REFERENCE, Cell, SelftestReport


def _report(*cells: Cell) -> SelftestReport:
    return SelftestReport(1, ["race", "model"], list(cells))


def test_model_summary_counts_finds_and_median_shrunk_length() -> None:
    report = _report(
        Cell(REFERENCE, "model", False),
        Cell("lost-update", "model", True, "model/state-machine", 40.0, 0, shrunk_steps=3),
        Cell("self-tip", "model", True, "model/state-machine", 20.0, 0, shrunk_steps=2),
        Cell("jwt-no-exp", "model", True, "model/state-machine", 90.0, 0, shrunk_steps=9),
        Cell("leaky-errors", "model", False),
        Cell("leaky-errors", "race", True, "race/x", 1.0, 5),
    )
    assert report.model_summary() == (
        "model suite: found 3 of 4 variants; shrunk sequences: median 3 steps, 2 of 3 at most 6"
    )
    matrix = report.markdown()
    assert "caught 40.0 s / shrunk to 3 steps" in matrix
    assert "| leaky-errors | caught 1.0 s / 5 ops | - |" in matrix
    assert matrix.rstrip().endswith(str(report.model_summary()))
    assert report.to_json()["model_summary"] == report.model_summary()
    # The model missing a variant another suite catches does not fail the selftest.
    assert report.ok


def test_no_model_cells_no_summary() -> None:
    report = _report(Cell("lost-update", "race", True, "race/x", 1.0, 5))
    assert report.model_summary() is None
    assert "model suite" not in report.markdown()


def test_progress_line_names_the_outcome() -> None:
    from harness.cli.selftest import _cell_outcome

    shrunk = Cell("lost-update", "model", True, "model/state-machine", 4.0, 0, shrunk_steps=2)
    assert _cell_outcome(shrunk).endswith("model/state-machine (4.0 s, shrunk to 2 steps)")
    assert _cell_outcome(Cell("x", "race", True, "race/y", 1.0, 5)).endswith("(1.0 s, 5 ops)")
    unshrunk = Cell("lost-update", "model", True, "model/state-machine", 4.0, 310)
    assert _cell_outcome(unshrunk).endswith("model/state-machine (4.0 s, 310 ops)")
    assert _cell_outcome(Cell("x", "race", False, errors=("race/y: boom",))).endswith("boom")
    assert _cell_outcome(Cell(REFERENCE, "race", False)) == "clean"


def test_long_scenarios_progress_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_selftest passes each scenario a progress callback naming the variant and
    suite (the target and the scenario runs are faked: only the wiring is tested)."""
    import contextlib

    import harness.selftest.run as selftest
    from harness.provisioning import PostgresSettings
    from harness.run.options import RunOptions
    from harness.run.runner import ScenarioReport
    from harness.run.scenario import Scenario

    async def fake_run(
        target: object, item: Scenario, *, seed: int, run_id: str, options: RunOptions
    ) -> ScenarioReport:
        options.on_progress(f"{item.name} halfway")
        return ScenarioReport(item, "pass", seed, 0.1)

    monkeypatch.setattr(selftest, "open_target", lambda *a, **k: contextlib.nullcontext())
    monkeypatch.setattr(selftest, "run_scenario", fake_run)
    heard: list[tuple[str, str, str]] = []
    selftest.run_selftest(
        ["lost-update"],
        ["model"],
        PostgresSettings(),
        on_progress=lambda *args: heard.append(args),
    )
    assert heard == [("lost-update", "model", "state-machine halfway")]


@pytest.mark.parametrize(
    ("cells", "verdict"),
    [
        # Every flaw caught, the reference clean.
        ([Cell(REFERENCE, "race", False), Cell("lost-update", "race", True)], "pass"),
        # A false alarm on the reference fails the selftest.
        ([Cell(REFERENCE, "race", True), Cell("lost-update", "race", True)], "fail"),
        # The reference could not run: undecided, never a pass.
        (
            [Cell(REFERENCE, "race", False, errors=("x",)), Cell("lost-update", "race", True)],
            "error",
        ),
        # A flaw missed by suites that ran fails; one whose suites could not run is undecided.
        ([Cell(REFERENCE, "race", False), Cell("lost-update", "race", False)], "fail"),
        ([Cell("lost-update", "race", False, errors=("GateNotFilled",))], "error"),
        # Without the reference (--no-reference), the flaws alone decide.
        ([Cell("lost-update", "race", True), Cell("self-tip", "security", True)], "pass"),
    ],
)
def test_the_verdict_weighs_the_reference_and_every_flaw(cells: list[Cell], verdict: str) -> None:
    assert _report(*cells).verdict == verdict
