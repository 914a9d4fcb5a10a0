"""tokenproof on services it did not write (`foreign/`): every defect switched
on alone is caught by the suite made for it, naming an invariant that fits.
Each correct build passes every suite with no violation: here for the services
without a CI recipe, and for the others by running the CI recipes of
docs/ci.md on them (tests/e2e/test_ci_recipes.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_ci_recipes import RECIPES, findings
from tests.foreign import Foreign, marks, names, prepare

CLI = [sys.executable, "-m", "harness"]
FOREIGN = names()
DEFECTS = [
    (name, defect, spec)
    for name in FOREIGN
    for defect, spec in json.loads(
        (Path(__file__).parents[2] / "foreign" / name / "defects.json").read_text()
    ).items()
    if spec.get("expect")
]


@pytest.fixture(scope="session")
def foreign_cache(request: pytest.FixtureRequest) -> Path:
    cache = request.config.cache
    assert cache is not None
    return Path(cache.mkdir("foreign-services"))


def _prepared(name: str, cache: Path) -> Foreign:
    # Each xdist worker installs at most once (the cache is keyed by the lockfile).
    return prepare(name, cache)


def _verify(service: Foreign, report: Path, *extra: str, defect: str | None = None) -> Any:
    result = subprocess.run(
        [*CLI, "verify", *service.verify_args(defect), "--report", str(report), *extra],
        capture_output=True,
        text=True,
        timeout=900,
    )
    data = None
    if (report / "report.json").exists():
        data = json.loads((report / "report.json").read_text())
    return result, data


@pytest.mark.parametrize(
    ("name", "defect", "spec"),
    [pytest.param(n, d, s, marks=marks(n), id=f"{n}:{d}") for n, d, s in DEFECTS],
)
def test_each_foreign_defect_is_caught(
    name: str, defect: str, spec: dict[str, Any], foreign_cache: Path, tmp_path: Path
) -> None:
    service = _prepared(name, foreign_cache)
    result, data = _verify(service, tmp_path, "--suite", spec["suite"], defect=defect)
    assert data is not None, result.stderr[-4000:]
    reported = {v["invariant"] for s in data["scenarios"] for v in s["violations"]}
    assert result.returncode == 1, f"exit {result.returncode}: {result.stderr[-3000:]}"
    assert reported & set(spec["expect"]), (
        f"{defect}: expected one of {spec['expect']}, reported {sorted(reported)}"
    )
    # One defect, one problem (harness.problems), naming an expected invariant.
    problems = data["problems"]
    assert len(problems) == 1, f"{defect}: {[p['headline'] for p in problems]}"
    assert set(problems[0]["invariants"]) & set(spec["expect"]), problems[0]


# Several defects on at once, from different families: as many problems as defects,
# each naming one of its defect's expected invariants.
SEVERAL = {
    "node-express": ("lost-update", "jwt-no-exp", "webhook-no-dedupe"),
    "flask-psycopg": ("self-tip", "no-bonus", "ignore-canceled"),
    "node-bullmq": ("ack-before-durable", "cache-dedupe-check-then-set"),
    "fastify-credits": ("self-tip", "credit-at-checkout", "transfer-key-ignored"),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=marks(n)) for n in sorted(SEVERAL)])
def test_several_defects_are_as_many_problems(
    name: str, foreign_cache: Path, tmp_path: Path
) -> None:
    service = _prepared(name, foreign_cache)
    defects = SEVERAL[name]
    suites = sorted({s for d in defects for s in service.defects[d]["suite"].split(",")})
    result, data = _verify(service, tmp_path, "--suite", ",".join(suites), defect=",".join(defects))
    assert data is not None, result.stderr[-4000:]
    assert result.returncode == 1, result.stderr[-3000:]
    problems = data["problems"]
    assert len(problems) == len(defects), [p["headline"] for p in problems]
    for defect in defects:
        expected = set(service.defects[defect]["expect"])
        assert any(expected & set(p["invariants"]) for p in problems), (defect, problems)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=marks(n)) for n in FOREIGN if n not in RECIPES]
)
def test_each_correct_build_passes_every_suite(
    name: str, foreign_cache: Path, tmp_path: Path
) -> None:
    service = _prepared(name, foreign_cache)
    result, data = _verify(service, tmp_path)
    assert data is not None, result.stderr[-4000:]
    assert result.returncode == 0, f"exit {result.returncode}:\n{findings(data)}"
    assert data["verdict"] == "pass"
    assert len(data["scenarios"]) > 40  # every suite ran
    # A service in its own words is reported with them.
    assert ("dialect" in data) == (service.dialect is not None)


@pytest.mark.needs_node
@pytest.mark.needs_redis
def test_the_queue_service_starts_and_stops_as_a_whole(foreign_cache: Path) -> None:
    """The queue-based service's launcher (web, worker, its own redis-server): a
    SIGTERM to it or to its process group stops all three, and a SIGKILL to the
    launcher alone leaves none behind (its own script, on real processes)."""
    service = _prepared("node-bullmq", foreign_cache)
    env = {**os.environ, "TOKENPROOF": str(Path(sys.executable).parent / "tokenproof")}
    result = subprocess.run(
        ["bash", "test/lifecycle.sh"],
        cwd=service.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "PASS" in result.stdout and "FAIL" not in result.stdout, result.stdout[-4000:]


def test_a_service_that_serves_one_request_at_a_time_passes(
    foreign_cache: Path, tmp_path: Path
) -> None:
    """gunicorn with one worker and one thread is correct, only slower: the gated
    race releases with its one waiter (noted), and the early webhook waits behind
    the purchase that Stripe answered without it, as with Stripe."""
    service = _prepared("flask-psycopg", foreign_cache)
    one_at_a_time = ["--target-env", "WEB_CONCURRENCY=1", "--target-env", "GUNICORN_THREADS=1"]
    scenarios = ["race/drain-one-fan-gated", "webhooks/before-the-purchase-answer"]
    result, data = _verify(
        service, tmp_path, *one_at_a_time, *(a for s in scenarios for a in ("--scenario", s))
    )
    assert data is not None, result.stderr[-4000:]
    assert result.returncode == 0, f"exit {result.returncode}:\n{findings(data)}"
    notes = [n for s in data["scenarios"] for n in s.get("notes", ())]
    assert any("one at a time" in n for n in notes), notes
