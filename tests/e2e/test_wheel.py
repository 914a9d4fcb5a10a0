"""The built wheel is the product: installed (not editable) into a fresh virtual
environment, every command works from an empty folder, with nothing of this
checkout on the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
TEAM_SCENARIOS = '''
from harness.api import Run, fan, scenario


@scenario("team", users=[fan("buyer")])
async def buys_one_pack(run: Run) -> None:
    """One card purchase, credited once."""
    await run.purchase("buyer", 100)
'''


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout, installed into a new virtualenv with the
    pinned dependency set; its bin folder."""
    work = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", "dist", str(ROOT)], work)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = (work / "dist").glob("tokenproof-*.whl")
    assert _run([sys.executable, "-m", "venv", "venv"], work).returncode == 0
    bin_dir = work / "venv" / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
    done = _run([*pip, "-c", str(ROOT / "constraints.txt"), str(wheel)], work, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return bin_dir


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_verify_runs_one_suite(installed: Path, empty: Path) -> None:
    result = _run([str(installed / "tokenproof"), "verify", "--suite", "inputs"], empty)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "verdict: pass" in result.stderr


def test_load_runs_for_ten_seconds(installed: Path, empty: Path) -> None:
    tokenproof = str(installed / "tokenproof")
    where = _run([tokenproof, "locustfile"], empty)
    assert where.returncode == 0 and Path(where.stdout.strip()).is_file(), where.stderr
    assert str(ROOT) not in where.stdout  # the packaged file, not this checkout's
    result = _run([tokenproof, "load", "--users", "5", "--duration", "10"], empty)
    assert result.returncode == 0, result.stderr[-3000:]


def test_selftest_catches_one_flaw(installed: Path, empty: Path) -> None:
    result = _run(
        [str(installed / "tokenproof"), "selftest", "--quick", "--flaw", "lost-update"], empty
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_the_pytest_plugin_runs_a_teams_scenarios(installed: Path, empty: Path) -> None:
    (empty / "team_scenarios.py").write_text(TEAM_SCENARIOS)
    result = _run(
        [
            str(installed / "python"),
            "-m",
            "pytest",
            "--pyargs",
            "scenarios",
            "--scenarios-from",
            "team_scenarios",
            "-k",
            "team",
            "-q",
        ],
        empty,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
