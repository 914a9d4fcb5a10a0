"""The worked example (`examples/team-repo`), run as its team would, from a
folder outside this repository: `pytest` and `tokenproof verify` with only its
config file, its own scenarios beside the bundled ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from tests.foreign import prepare

EXAMPLE = Path(__file__).parents[2] / "examples" / "team-repo"
DEFECT = "TOKENPROOF_DEFECT=no-bonus"


@pytest.fixture
def team_repo(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A copy of the example outside this repository, its service installed."""
    cache = request.config.cache
    assert cache is not None
    service = prepare("flask-psycopg", Path(cache.mkdir("foreign-services")))
    copy = tmp_path / "team-repo"
    shutil.copytree(EXAMPLE, copy, symlinks=False)
    venv = Path(service.command.split()[0]).parents[1]
    (copy / "service" / ".venv").symlink_to(venv, target_is_directory=True)
    return copy


# tokenproof does not install pytest-asyncio for its users; this virtualenv has
# it only for tokenproof's own tests, so a team's run here leaves it out.
PYTEST = (sys.executable, "-m", "pytest", "-p", "no:asyncio")


def _run(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        argv, cwd=folder, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def test_pytest_passes_on_the_correct_service_without_warnings(team_repo: Path) -> None:
    result = _run(team_repo, *PYTEST, "-q", "-W", "error")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
    assert "warning" not in result.stdout.lower()


def test_pytest_fails_on_the_defect_with_a_pasteable_reproduction(team_repo: Path) -> None:
    result = _run(team_repo, *PYTEST, "-q", "--target-env", DEFECT)
    assert result.returncode == 1, result.stdout[-4000:]
    assert "big-pack-bonus-credited" in result.stdout
    line = next(x for x in result.stdout.splitlines() if "reproduce: tokenproof verify" in x)
    command = line.split("reproduce: ", 1)[1]
    assert "--scenarios-from test_team" in command
    assert f"--target-env {DEFECT}" in command


def test_verify_runs_the_team_scenarios_beside_the_bundled_ones(team_repo: Path) -> None:
    result = _run(team_repo, "tokenproof", "verify", "--suite", "race,team")
    report = team_repo / "reports" / "tokenproof"
    assert result.returncode == 0, result.stderr[-4000:]
    data = json.loads((report / "report.json").read_text())
    ids = {f"{s['suite']}/{s['name']}" for s in data["scenarios"]}
    assert {"team/big-pack-bonus", "team/tip-whole-balance", "race/drain-one-fan"} <= ids
    cases = {c.get("name") for c in ET.parse(report / "junit.xml").getroot().iter("testcase")}
    assert "big-pack-bonus" in cases
    # The team folder holds only what it had and the report folder it asked for.
    left = {p.name for p in team_repo.iterdir()} - {"__pycache__"}  # Python's own
    assert left == {p.name for p in EXAMPLE.iterdir()} | {"reports"}


def test_verify_catches_the_defect_with_the_team_scenario(team_repo: Path) -> None:
    result = _run(team_repo, "tokenproof", "verify", "--suite", "team", "--target-env", DEFECT)
    assert result.returncode == 1, result.stderr[-4000:]
    data = json.loads((team_repo / "reports" / "tokenproof" / "report.json").read_text())
    found = {v["invariant"] for s in data["scenarios"] for v in s["violations"]}
    assert "big-pack-bonus-credited" in found
