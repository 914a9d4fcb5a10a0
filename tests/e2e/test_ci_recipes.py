"""The CI recipes of docs/ci.md, run exactly as written against the correct
foreign services: this is also where each correct foreign service is verified
in full (every suite) with no violation."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from tests.foreign import marks

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "ci.md"
INSTALLS_TOKENPROOF = re.compile(r"pip install \"tokenproof @ ")


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def github_commands() -> list[str]:
    return re.findall(r"^\s*- run: (.+)$", _blocks("yaml")[0], flags=re.MULTILINE)


def gitlab_commands() -> list[str]:
    script = _blocks("yaml")[1].split("script:\n", 1)[1].split("artifacts:", 1)[0]
    return re.findall(r"^\s*- (.+)$", script, flags=re.MULTILINE)


RECIPES = {
    # service, its commands, its tokenproof.toml (from the page)
    "node-express": (github_commands, 0),
    "flask-psycopg": (gitlab_commands, -1),
}


def findings(data: dict[str, Any]) -> str:
    """Every violation and error of a run's report.json, one line each."""
    lines = []
    for s in data["scenarios"]:
        where = f"{s['suite']}/{s['name']}"
        lines += [f"{where}: {v['invariant']}: {v['message'][:300]}" for v in s["violations"]]
        if s["error"]:
            lines.append(f"{where}: {s['error'][:300]}")
    return "\n".join(lines)


@pytest.mark.parametrize("service", [pytest.param(n, marks=marks(n)) for n in sorted(RECIPES)])
def test_recipe_runs_green_and_publishes_its_artefacts(service: str, tmp_path: Path) -> None:
    commands, toml_index = RECIPES[service]
    steps = commands()
    installs = [c for c in steps if INSTALLS_TOKENPROOF.search(c)]
    assert len(installs) == 1, f"the recipe should install tokenproof once: {steps}"
    repo = tmp_path / service
    shutil.copytree(
        ROOT / "foreign" / service, repo, ignore=shutil.ignore_patterns("node_modules", ".venv")
    )
    (repo / "tokenproof.toml").write_text(_blocks("toml")[toml_index])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    for step in steps:
        if step in installs:
            continue  # tokenproof is installed here already (see docs/ci.md)
        result = subprocess.run(
            step, shell=True, cwd=repo, env=env, capture_output=True, text=True, timeout=1200
        )
        report = repo / "reports" / "tokenproof" / "report.json"
        detail = result.stderr[-3000:]
        if report.exists():
            detail = findings(json.loads(report.read_text()))
        assert result.returncode == 0, f"`{step}` exited {result.returncode}:\n{detail}"
    published = repo / "reports" / "tokenproof"
    cases = list(ET.parse(published / "junit.xml").getroot().iter("testcase"))
    data = json.loads((published / "report.json").read_text())
    assert data["verdict"] == "pass"
    assert len(cases) == len(data["scenarios"]) > 40  # every suite ran, one case each
    assert (published / "report.html").stat().st_size > 0
    assert (published / "service.log").stat().st_size > 0
