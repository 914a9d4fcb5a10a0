"""Reports from hand-made scenario results."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from harness.checkers import CheckResult, Violation
from harness.history import History
from harness.report import RunReport, balance_points, html_report, junit, write_reports
from harness.runner import ScenarioReport
from harness.scenario import Scenario


async def _noop(run: object) -> None:
    return None


def _report() -> RunReport:
    history = History()
    for balance in (90, 80):
        op = history.invoke("w1", "tip", "fan", {"creatorId": "cr", "tokenAmount": 10})
        history.complete(op, 200, {"senderBalance": balance, "recipientBalance": 100 - balance})
    scenario = Scenario("drain", "race", (), _noop, "doc")
    bad = Violation("ledger-explains-balance", "fan: off by 10", {"user": "fan"})
    failed = ScenarioReport(
        scenario, "fail", 7, 1.5, [CheckResult.of("ledger", 1, [bad])], history.ops
    )
    return RunReport("reference", 7, "abc", [failed], ["--target", "reference"])


def test_report_json_names_verdict_and_reproduction(tmp_path: Path) -> None:
    report = _report()
    write_reports(report, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["verdict"] == "fail"
    item = data["scenarios"][0]
    assert item["violations"][0]["invariant"] == "ledger-explains-balance"
    assert item["reproduce"].endswith("--scenario race/drain --seed 7")
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 4


def test_ops_a_scenario_sent_outside_its_history_are_counted() -> None:
    report = _report()
    scenario = report.scenarios[0]
    assert scenario.op_count == 2  # two invokes, their completions are not ops sent
    scenario.ops_elsewhere = 40  # e.g. the model's per-example histories
    assert scenario.op_count == 42
    assert scenario.to_json()["ops"] == 42


def test_junit_and_html() -> None:
    report = _report()
    case = ET.fromstring(junit(report)).find("testsuite/testcase")
    assert case is not None and case.find("failure") is not None
    assert balance_points(report.scenarios[0], "fan") == [
        (report.scenarios[0].ops[1].time_s, 90),
        (report.scenarios[0].ops[3].time_s, 80),
    ]
    page = html_report(report)
    assert "polyline" in page and "ledger-explains-balance" in page


def test_history_reader_skips_a_half_written_last_line(tmp_path: Path) -> None:
    from harness.history import read_jsonl

    history = History()
    history.complete(history.invoke("w", "tip", "fan", {}), 200, {})
    path = tmp_path / "h.jsonl"
    history.write_jsonl(path)
    with path.open("a") as f:
        f.write('{"index": 9, "process"')  # killed mid-write
    assert [op.type for op in read_jsonl(path)] == ["invoke", "ok"]


def test_a_violation_outranks_a_scenario_that_could_not_run() -> None:
    report = _report()
    broken = ScenarioReport(
        Scenario("gated", "race", (), _noop, "doc"), "error", 7, 0.1, error="GateNotFilled: ..."
    )
    report.scenarios.append(broken)
    assert report.verdict == "fail"
    assert [s.scenario.id for s in report.could_not_run] == ["race/gated"]
    assert report.to_json()["could_not_run"] == ["race/gated"]
    report.scenarios.pop(0)
    assert report.verdict in {"error"}


def test_reproduction_quotes_a_command_with_spaces() -> None:
    import shlex

    from harness.reproduce import reproduce_command

    line = reproduce_command(["--target-command", "node server.js"], "race/drain", 3)
    assert shlex.split(line)[2:4] == ["--target-command", "node server.js"]
