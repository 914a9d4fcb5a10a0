"""Reports from hand-made scenario results."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from harness.checkers import CheckResult, Violation
from harness.history import History
from harness.report import RunReport, balance_points, html_report, junit, write_reports
from harness.run.runner import ScenarioReport
from harness.run.scenario import Scenario


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

    from harness.run.reproduce import reproduce_command

    line = reproduce_command(["--target-command", "node server.js"], "race/drain", 3)
    assert shlex.split(line)[2:4] == ["--target-command", "node server.js"]


# ---- report.html ------------------------------------------------------------


def _page() -> str:
    from tests.report_data import failing_run

    return html_report(failing_run())


def test_html_lists_failures_first_and_folds_passing_scenarios() -> None:
    page = _page()
    table = page[page.index("Scenarios, failures first") :]
    order = [table.index(name) for name in ("race/drain-one-fan", "retry/same-key", "gated")]
    assert order[0] < order[1] < order[2] < table.index("36 scenarios passed")
    # Failing and broken scenarios are open sections; passing ones are closed <details>.
    assert '<section class="scenario st-fail" id="s-race-drain-one-fan">' in page
    assert '<section class="scenario st-error" id="s-race-drain-one-fan-gated">' in page
    assert '<details class="scenario st-pass" id="s-race-held-0">' in page


def test_html_lays_evidence_out_as_data_with_a_copyable_reproduction() -> None:
    page = _page()
    drain = page.split('id="s-race-drain-one-fan"')[1].split("</section>")[0]
    assert "<th>tokens</th>" in drain  # ledger rows as a table, not JSON
    assert '"tokens": -5' not in drain
    assert "12 more rows" in drain
    line = "tokenproof verify --target reference:lost-update --scenario race/drain-one-fan --seed 1"
    assert f'data-copy="{line}"' in drain
    # The ops the violation names are outlined on the timeline, and only those.
    assert drain.count('class="op o-ok marked"') == 3
    assert "ms since the scenario&#x27;s first request" in drain  # the balance plot's axis
    broken = page.split('id="s-retry-same-key-concurrently"')[1].split("</section>")[0]
    assert 'class="op o-info marked"' in broken
    assert "never answered" in broken  # the call still in flight
    assert "harness.run.gates.GateNotFilled" in broken  # the crashed checker's traceback


def test_html_is_one_file_that_fetches_nothing() -> None:
    page = _page()
    for needle in ("http://", "https://", "src=", "@import", "url("):
        assert needle not in page


def test_timeline_axis_is_in_ms_with_round_ticks() -> None:
    from harness.report.plots import nice_ticks, timeline_svg
    from tests.report_data import drain

    assert nice_ticks(0, 460) == [0, 100, 200, 300, 400]
    assert nice_ticks(0, 460, 12) == [0, 50, 100, 150, 200, 250, 300, 350, 400, 450]
    assert nice_ticks(0, 0.9, 5) == [0, 0.2, 0.4, 0.6, 0.8]
    svg = timeline_svg(drain().ops)
    assert ">ms</text>" in svg and ">400</text>" in svg
    assert svg.count('class="lane-label"') == 40  # one lane per worker


def test_ledger_sum_is_stepped_back_from_the_final_sum() -> None:
    from harness.report.plots import ledger_points
    from tests.report_data import drain

    scenario = drain()
    points = ledger_points(scenario, "run1-drain-fan", -100)
    assert points[0][1] == 100  # 40 acknowledged tips of 5 lead to -100
    assert points[-1][1] == -100
    assert [b for _, b in points] == sorted((b for _, b in points), reverse=True)


def test_load_report_html_plots_locust_history(tmp_path: Path) -> None:
    from harness.report.load_page import write_load_html
    from tests.report_data import drained_load

    history = tmp_path / "locust_stats_history.csv"
    lines = ["Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%,99%"]
    lines += [
        f"{1700000000 + i},{min(20, 5 * i)},,Aggregated,{10 * i},0,{12 + i},40,N/A"
        for i in range(8)
    ]
    history.write_text("\n".join(lines) + "\n")
    (tmp_path / "locust.html").write_text("<html></html>")
    stats = [
        {
            "Type": "POST",
            "Name": "tip",
            "Request Count": "80",
            "Failure Count": "0",
            "Requests/s": "10.5",
            "50%": "12",
            "95%": "40",
            "99%": "70",
            "Max Response Time": "90",
        }
    ]
    page = write_load_html(drained_load(8, stats), tmp_path).read_text()
    assert '<header class="verdict fail">' in page
    assert "2 violations of 2 invariants in 40 requests" in page
    assert page.count('<svg class="chart"') == 3  # throughput, latency, users
    assert '<a href="locust.html">' in page
    assert "<td>POST tip</td>" in page


def test_error_line_names_the_exception() -> None:
    from harness.report.summary import error_line

    trace = "Traceback (most recent call last):\n  File x\nKeyError: 'id'"
    assert error_line(trace) == "KeyError: 'id'"
    assert error_line(f"checker reconciliation crashed:\n{trace}") == (
        "checker reconciliation crashed: KeyError: 'id'"
    )
    assert error_line("while running: GateNotFilled: 3 of 20\nTraceback ...") == (
        "while running: GateNotFilled: 3 of 20"
    )


def test_many_violations_of_one_invariant_share_a_table() -> None:
    from tests.report_data import Ops

    ops = Ops()
    calls = [ops.call(f"w{i}", "tip", "a", {"tokenAmount": 1}, 0.0, 0.1, 503, {}) for i in range(4)]
    bad = [
        Violation("no-5xx", f"tip by a answered 503 ({i})", {"op": op.to_json()})
        for i, op in enumerate(calls)
        if op is not None
    ]
    scenario = ScenarioReport(
        Scenario("crossed", "race", (), _noop, "doc"),
        "fail",
        1,
        0.3,
        [CheckResult.of("no_server_errors", 4, bad)],
        ops.ops,
    )
    page = html_report(RunReport("reference", 1, "r", [scenario], []))
    assert "no-5xx \u00d74" in page
    assert page.count('<tr class="o-info" data-process=') == 4  # one table, a row per call
    assert page.count('class="violation"') == 1


def test_a_multi_line_message_is_headed_by_its_exception_line() -> None:
    from harness.report.html import headline

    model = (
        "WARNING: Hypothesis has spent more than five minutes shrinking.\n"
        "--- failure 1 of 1 ---\nstate = TokenModelRun()\nstate.burst(ops=[...])\n"
        "AssertionError: no serial order of the burst gives the answers [200, 200]"
    )
    assert headline(model).startswith("AssertionError: no serial order")
    assert headline("fan: off by 10") == "fan: off by 10"
    assert len(headline("x" * 1000)) == 240


def test_what_tokenproof_did_to_the_service_is_in_the_timeline_and_the_json() -> None:
    report = _report()
    report.scenarios[0].actions = [(0.25, "SIGKILL to the service's process group")]
    assert "0.250 s: SIGKILL to the service&#x27;s process group" in html_report(report)
    [item] = report.to_json()["scenarios"]
    assert item["actions"] == [{"at_s": 0.25, "what": "SIGKILL to the service's process group"}]


def test_the_settle_lag_is_summarised_for_the_run() -> None:
    from harness.report import summary
    from harness.state import Settling

    report = _report()
    report.scenarios[0].settling = Settling(True, 0.4, 5, 10.0, 0.1, lags=(("pi_1", 0.3),))
    lag = report.to_json()["settle"]
    assert (lag["max_wait_s"], lag["late_intents"]) == (0.4, 1)
    assert lag["slowest"] == [{"intent": "pi_1", "scenario": "race/drain", "lag_s": 0.3}]
    assert "pi_1 300 ms (race/drain)" in summary.settle_line(report)


def test_the_problems_lead_every_output() -> None:
    import io

    from rich.console import Console

    from harness.report import print_table

    report = _report()
    data = report.to_json()
    assert data["headline"] == "1 problem (1 violation in 1 scenario)"
    [problem] = data["problems"]
    assert problem["invariants"] == ["ledger-explains-balance"]
    assert problem["scenarios"] == ["race/drain"]
    assert problem["reproduce"].endswith("--scenario race/drain --seed 7")
    assert problem["contract"] and problem["violations"][0]["scenario"] == "race/drain"
    page = html_report(report)
    assert page.index("1 problem (1 violation") < page.index("Violations by invariant")
    cases = ET.fromstring(junit(report)).iter("testcase")
    assert [c.get("classname") for c in cases] == ["race", "problems"]
    out = io.StringIO()
    print_table(report, Console(file=out, width=200))
    last = out.getvalue().rstrip().splitlines()[-1]
    assert last.startswith("  1. ") and "[ledger-explains-balance]" in last
