"""The load run's parts that need no Locust: the op file read as it grows,
checks folded op by op, the live checks' judgement, Locust's duration forms."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness.checkers import Checks, check
from harness.checkers.fold import KEPT_VIOLATIONS
from harness.history import History
from harness.load.duration import BadDuration, parse_duration, spell_duration
from harness.load.live import HOLD_S, LiveChecks, Snapshot
from harness.load.stream import OpFile, Tally
from harness.state import BalanceRow, DbState, LedgerRow, Observation, empty_observation

pytestmark = pytest.mark.unit


def _history() -> History:
    history = History()
    tip = {"creatorId": "c", "tokenAmount": 3, "clientIdempotencyKey": "k1"}
    history.complete(history.invoke("w1", "tip", "fan", tip), 200, {"success": True})
    history.complete(history.invoke("w1", "tip", "fan", tip), None, error="timeout")
    history.complete(history.invoke("w2", "deduct", "fan", {"tokenAmount": 2}), 503, "boom")
    history.invoke("w2", "tip", "fan", {"creatorId": "c", "tokenAmount": 5})  # never answered
    return history


def _write(path: Path, history: History, *, cut_last: bool = False) -> None:
    lines = [
        json.dumps({k: v for k, v in op.to_json().items() if k != "index"}) for op in history.ops
    ]
    text = "\n".join(lines) + "\n"
    path.write_bytes(text.encode()[: -10 if cut_last else None])


def test_the_op_file_is_read_as_it_grows_and_half_a_line_waits(tmp_path: Path) -> None:
    history = _history()
    path = tmp_path / "ops.jsonl"
    checks, tally = Checks(), Tally()
    reader = OpFile(path, checks, tally)
    assert reader.read_new() == 0  # not written yet
    _write(path, history, cut_last=True)
    assert reader.read_new() == len(history.ops) - 1  # the last line is not whole yet
    _write(path, history)
    assert reader.read_new() == 1
    assert tally.requests == 4 and tally.outcomes == {"ok": 1, "info": 2}
    assert tally.server_errors == 1 and tally.unreadable == 0
    assert reader.ops_at([0, 6])[6].f == "tip"


def test_folding_from_the_file_judges_as_checking_the_list(tmp_path: Path) -> None:
    history = _history()
    db = DbState(
        (),
        (BalanceRow("fan", 10, 0),),
        (LedgerRow(1, "fan", "tip", -9, "completed", None, None, "c", None),),
        (),
    )
    observation = Observation(history.ops, db, empty_observation().stripe)
    expected = check(observation)
    path = tmp_path / "ops.jsonl"
    _write(path, history)
    checks = Checks()
    reader = OpFile(path, checks, Tally())
    reader.read_new()
    folded = checks.finish(observation, reader.ops_at)
    assert [r.to_json() for r in folded] == [r.to_json() for r in expected]
    # 3 ok + 5 never answered: 9 debited is more than any answer allows.
    answers = next(r for r in folded if r.checker == "transfers_match_answers")
    assert [v.evidence["debited"] for v in answers.violations] == [9]


def test_a_keyed_retry_answered_ok_turns_an_unknown_first_try_into_a_promise() -> None:
    history = History()
    tip = {"creatorId": "c", "tokenAmount": 4, "clientIdempotencyKey": "k"}
    history.complete(history.invoke("w", "tip", "fan", tip), None, error="timeout")
    history.complete(history.invoke("w", "tip", "fan", tip), 200, {"success": True})
    db = DbState((), (), (), ())  # nothing debited: the ok answer was a lie
    (result,) = check(
        Observation(history.ops, db, empty_observation().stripe), ["transfers_match_answers"]
    )
    (violation,) = result.violations
    assert (violation.evidence["answered_ok"], violation.evidence["unknown"]) == (4, 0)


def test_an_incomplete_history_judges_answers_as_lower_bounds_only() -> None:
    history = History()
    history.complete(history.invoke("w", "tip", "fan", {"creatorId": "c", "tokenAmount": 1}), 200)
    row = LedgerRow(1, "fan", "tip", -2, "completed", None, None, "c", None)
    observation = Observation(history.ops, DbState((), (), (row,), ()), empty_observation().stripe)
    names = ["transfers_match_answers"]
    assert check(observation, names)[0].violations  # 2 debited, 1 answered
    lost = Observation(history.ops, observation.db, observation.stripe, history_complete=False)
    assert not check(lost, names)[0].violations  # a lost worker's call may be the other


def test_a_service_failing_every_request_keeps_a_bounded_list_and_counts_the_rest() -> None:
    history = History()
    for _ in range(KEPT_VIOLATIONS + 30):
        history.complete(history.invoke("w", "balance", "fan", {}), 500, "down")
    (result,) = check(
        Observation(history.ops, DbState((), (), (), ()), empty_observation().stripe),
        ["no_server_errors"],
    )
    assert len(result.violations) == KEPT_VIOLATIONS + 1
    assert result.violations[-1].evidence == {"more": 30}


def test_live_ledger_gaps_are_judged_after_the_hold_and_never_for_buyers() -> None:
    live = LiveChecks("postgresql://unused", ("fan", "buyer", "creator"))
    taken = time.monotonic()
    gaps = (("fan", 10, 7), ("buyer", 600, 100))
    live._held.append(Snapshot(taken, 12.0, gaps))
    live.judge({"buyer"}, ops_read_at=taken + HOLD_S / 2)
    assert live.violations == []  # a purchase call sent before the read may still arrive
    live.judge({"buyer"}, ops_read_at=taken + HOLD_S)
    (violation,) = live.violations
    assert violation.evidence["user"] == "fan" and violation.evidence["during_load_s"] == 12.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("10s", 10),
        ("5m", 300),
        ("1h30m", 5400),
        ("2h", 7200),
        ("1h5m30s", 3930),
        (" 7S ", 7),
    ],
)
def test_locust_duration_forms(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(spell_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "1m1h", "1.5m", "-3", "0", "0s", "h"])
def test_other_durations_are_refused_with_the_forms(text: str) -> None:
    with pytest.raises(BadDuration, match=r"10s|at least 1 s"):
        parse_duration(text)


def test_a_load_run_whose_checker_crashed_is_never_a_pass() -> None:
    from harness.checkers import CheckResult
    from harness.load.report import LoadReport, LoadSettings
    from harness.verdict import EXIT_CODES

    crashed = CheckResult("transfers", "unknown", 0, error="Traceback ...")
    report = LoadReport("reference", LoadSettings(), [crashed], 10.0, 0, seed=1)
    assert report.verdict == "error" and not report.ok and EXIT_CODES[report.verdict] == 2
    assert report.to_json()["verdict"] == "error"
    failing = CheckResult.of("no_server_errors", 1, [])
    assert LoadReport("reference", LoadSettings(), [failing], 1.0, 0, seed=1).verdict == "pass"
