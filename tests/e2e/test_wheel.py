"""The built wheel is the product: installed (not editable) into a fresh virtual
environment, every command works from an empty folder, with nothing of this
checkout on the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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


def _install(work: Path) -> Path:
    """The wheel built from a copy of this checkout (a build writes into its source
    folder), installed into a new virtualenv with the pinned dependency set; the
    virtualenv's bin folder."""
    source = work / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "node_modules",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
        ),
    )
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", "dist", str(source)], work
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = (work / "dist").glob("tokenproof-*.whl")
    assert _run([sys.executable, "-m", "venv", "venv"], work).returncode == 0
    bin_dir = work / "venv" / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
    done = _run([*pip, "-c", str(ROOT / "constraints.txt"), str(wheel)], work, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return bin_dir


def test_the_installed_wheel_works_from_an_empty_folder(tmp_path: Path) -> None:
    """One test, so one build and one install: verify (one suite), load (10 s),
    selftest with one flaw, and the pytest plugin with a team's scenarios."""
    installed = _install(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    tokenproof = str(installed / "tokenproof")

    verified = _run([tokenproof, "verify", "--suite", "inputs"], empty)
    assert verified.returncode == 0, verified.stderr[-3000:]
    assert "verdict: pass" in verified.stderr

    where = _run([tokenproof, "locustfile"], empty)
    assert where.returncode == 0 and Path(where.stdout.strip()).is_file(), where.stderr
    assert str(ROOT) not in where.stdout  # the packaged file, not this checkout's
    loaded = _run([tokenproof, "load", "--users", "5", "--duration", "10"], empty)
    assert loaded.returncode == 0, loaded.stderr[-3000:]

    selftest = _run([tokenproof, "selftest", "--quick", "--flaw", "lost-update"], empty)
    assert selftest.returncode == 0, selftest.stdout[-3000:] + selftest.stderr[-3000:]

    (empty / "team_scenarios.py").write_text(TEAM_SCENARIOS)
    plugin = _run(
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
            "-p",
            "no:cacheprovider",
        ],
        empty,
    )
    assert plugin.returncode == 0, plugin.stdout[-3000:] + plugin.stderr[-2000:]
    assert "1 passed" in plugin.stdout
