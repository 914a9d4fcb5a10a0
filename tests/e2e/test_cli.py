"""The `tokenproof` command as a user runs it: real processes, real signals."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.emulator.defaults import DEFAULT_WEBHOOK_SECRET
from harness.flaws import FLAWS
from harness.waiting import process_alive, wait_until
from tests.needs import deliverable_sigint

CLI = [sys.executable, "-m", "harness"]


def _start_postgres_cli(*extra: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [*CLI, "postgres", "--json", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=deliverable_sigint,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        _, stderr = proc.communicate(timeout=30)
        pytest.fail(f"no JSON line; stderr: {stderr}")
    return proc, json.loads(line)


def _finish(proc: subprocess.Popen[str]) -> int:
    proc.communicate(timeout=30)  # also closes the pipes
    return proc.returncode


def test_help_answers() -> None:
    out = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=True).stdout
    assert "verify" in out and "postgres" in out


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_server_and_deletes_data(sig: signal.Signals, code: int) -> None:
    proc, info = _start_postgres_cli()
    assert process_alive(info["pid"]) and Path(info["data_dir"]).exists()
    proc.send_signal(sig)
    assert _finish(proc) == code
    assert not process_alive(info["pid"])
    assert not Path(info["data_dir"]).exists()


def test_killed_parent_takes_server_down() -> None:
    proc, info = _start_postgres_cli()
    proc.kill()  # no cleanup code runs: only PR_SET_PDEATHSIG can stop the server
    _finish(proc)
    wait_until(lambda: not process_alive(info["pid"]), within=30, what="postgres exit")


def test_missing_binaries_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "postgres", "--postgres-bin", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "initdb" in result.stderr or "binaries" in result.stderr


def test_taken_port_exit_2() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [*CLI, "postgres", "--postgres-port", str(port)], capture_output=True, text=True
        )
    assert result.returncode == 2
    assert str(port) in result.stderr


def _verify(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TOKENPROOF_DATABASE_URL"}
    return subprocess.run(
        [*CLI, "verify", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_verify_race_passes_and_writes_reports(tmp_path: Path) -> None:
    result = _verify("--suite", "race", "--report", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "pass"
    assert {s["suite"] for s in report["scenarios"]} == {"race"}
    for name in ("report.json", "junit.xml", "history.jsonl", "report.html"):
        assert (tmp_path / name).stat().st_size > 0
    first = json.loads((tmp_path / "history.jsonl").read_text().splitlines()[0])
    assert first["type"] == "invoke"


def test_verify_through_target_command() -> None:
    command = f"{sys.executable} -m reference_impl"
    result = _verify(
        "--suite",
        "race",
        "--target-command",
        command,
        "--target-schema",
        str(Path("reference_impl/migrations/001_token_ledger.sql").resolve()),
    )
    assert result.returncode == 0, result.stderr


def _verify_flaw(tmp_path: Path, flaw: str, scenario: str) -> Any:
    """One scenario on a flawed reference, which must fail (exit 1): its report."""
    result = _verify(
        "--target", f"reference:{flaw}", "--scenario", scenario, "--report", str(tmp_path)
    )
    assert result.returncode == 1, result.stderr
    return json.loads((tmp_path / "report.json").read_text())


def test_verify_catches_a_lost_update_with_exit_1(tmp_path: Path) -> None:
    report = _verify_flaw(tmp_path, "lost-update", "race/drain-one-fan-gated")
    violations = report["scenarios"][0]["violations"]
    assert "ledger-explains-balance" in {v["invariant"] for v in violations}
    assert "--scenario race/drain-one-fan-gated" in report["scenarios"][0]["reproduce"]


def test_an_accepted_bad_token_is_said_to_be_accepted_not_refused(tmp_path: Path) -> None:
    report = _verify_flaw(tmp_path, "jwt-no-exp", "security/refused-tokens")
    [moved] = [
        v
        for v in report["scenarios"][0]["violations"]
        if v["invariant"] == "bad-token-changes-nothing"
    ]
    assert "accepted" in moved["message"] and "no-exp token" in moved["message"]
    assert "refused call" not in moved["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--suite", "nonsense"], "unknown suite"),
        (["--scenario", "race/nope"], "unknown scenario"),
        (["--target", "elsewhere"], "unknown target"),
        (["--target", "reference:no-such-flaw"], "unknown flaw"),
        (
            [
                "--target-url",
                "http://127.0.0.1:9",
                "--database-url",
                "postgresql://x@127.0.0.1:9/x",
                "--jwt-secret",
                "s",
            ],
            "cannot reach",
        ),
        (["--target-url", "http://127.0.0.1:9"], "--database-url"),
        (["--target-command", "true", "--target-schema", "/nonexistent.sql"], "not a readable"),
        (["--target-command", "sh -c 'echo boom; exit 3'"], "exited with code 3"),
    ],
)
def test_verify_bad_input_exits_2(args: list[str], message: str) -> None:
    result = _verify(*args, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr.replace("\n", " ")


def test_verify_bad_schema_sql_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "schema.sql"
    bad.write_text("CREATE TABLE (;")
    result = _verify("--target-command", "true", "--target-schema", str(bad), timeout=120)
    assert result.returncode == 2
    assert "schema failed to load" in result.stderr


def test_a_service_without_the_contracts_tables_is_one_setup_error() -> None:
    """Preflight: no scenario runs, exit 2, and the message names the fix."""
    command = f"{sys.executable} -m reference_impl"  # no --target-schema: no tables
    result = _verify("--target-command", command, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "lacks what the contract names: users" in result.stderr
    assert "--target-schema" in result.stderr
    assert "running" not in result.stderr  # not one scenario started


def test_a_crashed_service_is_reported_and_the_next_scenario_runs_on_a_restarted_one(
    tmp_path: Path,
) -> None:
    """A service that exits by itself mid-scenario: that scenario fails with
    service-crashed (exit status, the tail of its output); the next one passes on
    a service tokenproof started again."""
    exits_on_first_tip = tmp_path / "crashy.py"
    exits_on_first_tip.write_text(
        "import os, runpy\n"
        "import reference_impl.routes as routes\n"
        "original = routes.tip\n"
        "async def tip(request):\n"
        "    marker = os.environ['CRASH_MARKER']\n"
        "    if not os.path.exists(marker):\n"
        "        open(marker, 'w').close()\n"
        "        print('tip handler: giving up', flush=True)\n"
        "        os._exit(3)\n"
        "    return await original(request)\n"
        "routes.tip = tip\n"
        "runpy.run_module('reference_impl', run_name='__main__')\n"
    )
    schema = str(Path("reference_impl/migrations/001_token_ledger.sql").resolve())
    result = _verify(
        "--target-command",
        f"{sys.executable} {exits_on_first_tip}",
        "--target-schema",
        schema,
        "--target-env",
        f"CRASH_MARKER={tmp_path / 'crashed'}",
        "--scenario",
        "race/drain-one-fan",
        "--scenario",
        "race/drain-one-fan-gated",
        "--report",
        str(tmp_path / "report"),
        "--json",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    first, second = json.loads(result.stdout)["scenarios"]
    crash = next(v for v in first["violations"] if v["invariant"] == "service-crashed")
    assert crash["evidence"]["exit"] == "exit code 3"
    assert "tip handler: giving up" in crash["evidence"]["log_tail"]
    assert second["status"] == "pass", second
    assert "tip handler: giving up" in (tmp_path / "report" / "service.log").read_text()


def test_stripe_emulator_serves_until_interrupted() -> None:
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [*CLI, "stripe-emulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == f"STRIPE_API_BASE=http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/_control/health").status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, within=20, what="emulator health")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert not healthy()


def test_stripe_emulator_bad_secret_exit_2() -> None:
    result = subprocess.run(
        [*CLI, "stripe-emulator", "--webhook-secret", "nope"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "whsec_" in result.stderr


def test_serve_runs_the_reference_until_interrupted() -> None:
    import httpx

    proc = subprocess.Popen(
        [*CLI, "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=deliverable_sigint,
    )
    assert proc.stdout is not None
    lines = dict(
        line.split(":", 1) for line in (proc.stdout.readline() for _ in range(4)) if ":" in line
    )
    url = lines["service"].strip()
    token = lines["token for fan-1"].strip()
    answer = httpx.get(f"{url}/api/tokens/balance", headers={"Authorization": f"Bearer {token}"})
    assert answer.json()["balance"] == 1000
    proc.send_signal(signal.SIGINT)
    assert _finish(proc) == 130
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/health")


def test_every_suite_passes_through_target_command() -> None:
    command = f"{sys.executable} -m reference_impl"
    schema = str(Path("reference_impl/migrations/001_token_ledger.sql").resolve())
    result = _verify("--target-command", command, "--target-schema", schema, "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(json.loads(result.stdout)["scenarios"]) >= 40


# The flaws in two halves, run side by side on the two workers.
FLAW_HALVES = (sorted(FLAWS)[::2], sorted(FLAWS)[1::2])


@pytest.mark.parametrize("flaws", FLAW_HALVES, ids=["first-half", "second-half"])
def test_selftest_quick_catches_every_variant(tmp_path: Path, flaws: list[str]) -> None:
    """The CI tier of the selftest: each variant against its home suite; exit 0
    only if all are caught. The reference's clean run over every suite is the test
    above and the plugin's (scenarios/test_scenarios.py); how the selftest's
    verdict weighs it, tests/unit/test_selftest_report.py."""
    env = {k: v for k, v in os.environ.items() if k != "TOKENPROOF_DATABASE_URL"}
    only = [a for f in flaws for a in ("--flaw", f)]
    result = subprocess.run(
        [*CLI, "selftest", "--quick", "--no-reference", *only, "--report", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    report = json.loads((tmp_path / "selftest.json").read_text())
    caught = {c["variant"] for c in report["cells"] if c["caught"]}
    assert caught == set(flaws), (set(flaws) - caught, result.stderr[-3000:])
    assert result.returncode == 0, result.stderr[-3000:]


def test_selftest_unknown_flaw_exits_2() -> None:
    result = subprocess.run([*CLI, "selftest", "--flaw", "nope"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown flaw" in result.stderr


FLAWED_LOAD = ("--users", "30", "--spawn-rate", "30", "--duration")


def _load(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k != "TOKENPROOF_DATABASE_URL"}
    result = subprocess.run(
        [*CLI, "load", "--report", str(tmp_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    report_path = tmp_path / "load.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return result, report


def test_load_run_on_the_reference_passes(tmp_path: Path) -> None:
    result, report = _load(
        tmp_path, "--users", "20", "--spawn-rate", "20", "--duration", "8", "--webhook-chaos"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert report["verdict"] == "pass"
    assert report["requests"] > 100
    assert (tmp_path / "locust.html").exists()
    assert (tmp_path / "locust_stats.csv").exists()
    page = (tmp_path / "report.html").read_text()
    assert '<header class="verdict pass">' in page and '<svg class="chart"' in page
    # A progress line every 5 s while Locust runs (stderr is no terminal here).
    progress = [line for line in result.stderr.splitlines() if "ops checked" in line]
    assert progress and progress[-1].startswith(("5/8 s", "10/8 s")), progress
    assert all(len(line) <= 80 for line in progress)  # never wrapped in a CI log
    assert report["outcomes"]["ok"] > 0 and report["workers"][0]["worker"] == "local"


def test_load_run_catches_lost_update(tmp_path: Path) -> None:
    result, report = _load(tmp_path, *FLAWED_LOAD, "8", "--target", "reference:lost-update")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "ledger-explains-balance" in {v["invariant"] for v in report["violations"]}


def test_load_stops_at_the_first_violation_when_asked(tmp_path: Path) -> None:
    result, report = _load(
        tmp_path, *FLAWED_LOAD, "2m", "--stop-on-violation", "--target", "reference:clock-source-id"
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert report["stopped_early"].startswith("stopped at the first violation")
    assert report["duration_s"] < 60  # not the two minutes asked for
    # Two tips in one clock tick share an earning source: the unique index
    # answers the second with a 5xx, seen in the op stream as it arrives.
    assert "no-5xx" in {v["invariant"] for v in report["violations"]}


def test_load_refuses_a_duration_in_no_known_form(tmp_path: Path) -> None:
    result, _ = _load(tmp_path, "--duration", "5 minutes")
    assert result.returncode == 2
    assert "10s, 5m, 1h30m" in result.stderr


def test_load_master_and_two_workers_give_one_verdict(tmp_path: Path) -> None:
    result, report = _load(
        tmp_path, "--users", "20", "--spawn-rate", "20", "--duration", "8", "--processes", "2"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert report["verdict"] == "pass"
    counted = [w["requests"] for w in report["workers"]]
    assert len(counted) == 2 and min(counted) > 0  # both workers sent requests
    assert sum(counted) == report["requests"]


def test_sigterm_during_the_model_suite_stops_everything() -> None:
    from tests.leftovers import processes_with_env

    # Every process the run starts inherits this mark: they are found by it, not
    # by their port, which another test's service may take as soon as it is free.
    mark = secrets.token_hex(8)
    env = {k: v for k, v in os.environ.items() if k != "TOKENPROOF_DATABASE_URL"}
    env["TOKENPROOF_TEST_MARK"] = mark
    env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT on a hang prints every thread's stack
    proc = subprocess.Popen(
        [*CLI, "verify", "--suite", "model", "--examples", "500"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    seen = ""
    # Read by character: "running model/state-machine ..." ends without a newline
    # until the scenario is over, and the signal must land while it runs.
    while "model/state-machine" not in seen:
        char = proc.stderr.read(1)
        assert char, seen
        seen += char
    started = processes_with_env("TOKENPROOF_TEST_MARK", mark) - {proc.pid}
    assert len(started) >= 2, "the service and the emulator run with the mark"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, stacks = proc.communicate(timeout=30)
        pytest.fail(f"no exit within 60 s of SIGTERM; its threads:\n{stacks[-8000:]}")
    assert proc.returncode == 143
    left = processes_with_env("TOKENPROOF_TEST_MARK", mark)
    assert left == set(), [_cmdline(pid) for pid in left]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"{pid} (gone)"


def test_verify_a_service_already_running(reference_database_factory: Any, tmp_path: Path) -> None:
    """--target-url: the team starts its service (here the reference) pointed at the
    emulator port tokenproof will use, and tokenproof verifies it in place."""
    import asyncio

    from harness.provisioning.local import free_port
    from harness.provisioning.service import REFERENCE_COMMAND, ServiceEnv, ServiceProcess

    database = asyncio.run(reference_database_factory.create())
    stripe_port = free_port()
    secret = "a-jwt-secret-that-is-long-enough-for-hs256"
    service = ServiceProcess(
        REFERENCE_COMMAND,
        ServiceEnv(
            database_url=database.dsn,
            jwt_secret=secret,
            stripe_api_base=f"http://127.0.0.1:{stripe_port}",
            stripe_webhook_secret=DEFAULT_WEBHOOK_SECRET,
        ),
        log_path=tmp_path / "service.log",
    ).start()
    try:
        result = _verify(
            "--suite",
            "race,webhooks",
            "--target-url",
            service.url,
            "--database-url",
            database.dsn,
            "--jwt-secret",
            secret,
            "--stripe-port",
            str(stripe_port),
        )
        # Preflight: a secret that is not the service's is one setup error.
        wrong = _verify(
            "--target-url",
            service.url,
            "--database-url",
            database.dsn,
            "--jwt-secret",
            "not-the-services-secret-but-long-enough",
            timeout=120,
        )
    finally:
        service.cleanup()
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"STRIPE_API_BASE=http://127.0.0.1:{stripe_port}" in result.stderr.replace("\n", "")
    assert wrong.returncode == 2, wrong.stderr[-2000:]
    assert "refused a valid bearer token" in wrong.stderr.replace("\n", " ")
    assert "running" not in wrong.stderr
