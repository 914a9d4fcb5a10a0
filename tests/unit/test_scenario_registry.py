"""The scenario registry and its generated documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.run.scenario import SUITE_MODULES, load_suites, markdown, select


def test_every_suite_has_scenarios_with_docs() -> None:
    suites = load_suites()
    assert set(suites) == set(SUITE_MODULES)
    for items in suites.values():
        assert items
        assert all(len(item.doc) > 40 for item in items)


def test_readme_is_generated_from_the_code() -> None:
    readme = Path(__file__).parents[2] / "scenarios" / "README.md"
    assert readme.read_text() == markdown(load_suites()), (
        "scenarios/README.md is stale: tokenproof scenarios --markdown > scenarios/README.md"
    )


def test_unknown_suite_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="choose from"):
        select(["nope"])
