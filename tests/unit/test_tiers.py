"""The test tiers keep their promises: the unit tier starts no process, and a
missing tool skips a developer's run but fails CI's."""

from __future__ import annotations

import subprocess

import pytest

from tests.needs import NEEDS, missing

pytestmark = pytest.mark.unit


def test_the_unit_tier_refuses_to_start_a_process() -> None:
    with pytest.raises(AssertionError, match="move it to tests/integration"):
        subprocess.Popen(["true"])


def test_a_missing_tool_skips_locally_with_the_way_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no redis \(apt-get install redis"):
        missing("no redis", "apt-get install redis-server")


def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"\.ci/run must provide it"):
        missing("no redis", "apt-get install redis-server")


def test_every_needs_marker_is_registered(pytestconfig: pytest.Config) -> None:
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert set(NEEDS) <= registered
