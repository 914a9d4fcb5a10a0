"""Every registered scenario as a pytest test: `pytest scenarios/` and
`tokenproof verify` run the same scenarios through the same runner."""

from __future__ import annotations

import pytest

from harness.run.scenario import Scenario, select
from harness.testing import run_as_test


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The bundled scenarios and those of `--scenarios-from`, each named
    `tokenproof::suite/name`."""
    if "item" in metafunc.fixturenames:
        chosen = select(None, metafunc.config.getoption("--scenarios-from"))
        metafunc.parametrize("item", chosen, ids=[f"tokenproof::{s.id}" for s in chosen])


def test_scenario(item: Scenario, request: pytest.FixtureRequest) -> None:
    run_as_test(request, item, request.config.getoption("--scenarios-from"))
