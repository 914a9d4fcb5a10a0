"""docs/architecture.md walks a newcomer through the code one file per step:
every file it names must exist, or the walk leads nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parents[2]


def test_every_file_the_architecture_walk_names_exists() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    # Full paths; a bare name (`ledger.py`) is read in the folder named before it.
    named = set(
        re.findall(r"`((?:harness|scenarios|reference_impl)/[\w/.]*|locustfile\.py)`", text)
    )
    assert len(named) > 20, "the walk names its files in backticks"
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_the_walk_names_every_module_of_the_verify_path() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    path = ["cli/verify.py", "target/spec.py", "target/start.py", "target/preflight.py"]
    path += ["run/verify.py", "run/runner.py", "target/client.py", "history.py"]
    path += ["run/observe.py", "checkers/__init__.py", "problems.py", "report/__init__.py"]
    assert [p for p in path if f"`harness/{p}`" not in text] == []


def test_the_walk_names_every_stage_of_the_house() -> None:
    """Every package of harness/ is a stage the walk shows, in its layout table."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    packages = sorted(p.name for p in (ROOT / "harness").iterdir() if (p / "__init__.py").exists())
    assert len(packages) >= 10
    assert [p for p in packages if f"`harness/{p}/`" not in text] == []
