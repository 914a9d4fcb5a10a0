"""Root conftest: sorts the project's own tests into cost tiers by folder.

tests/unit needs nothing; tests/integration talks to real servers over
loopback (PostgreSQL, the emulator); tests/e2e runs
whole processes. `make test-fast` runs only the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

_TIERS = {"unit": "unit", "integration": "integration", "e2e": "e2e"}
_OWN_TESTS = Path(__file__).parent / "tests"


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so that running the bundled scenarios from another
    # folder (`pytest --pyargs scenarios`) knows the marker this file adds.
    for name, doc in (
        ("unit", "no database, no network; fast"),
        ("integration", "real servers over loopback (PostgreSQL, the Stripe emulator)"),
        ("e2e", "runs the CLI or whole processes end to end"),
    ):
        config.addinivalue_line("markers", f"{name}: {doc}")
    if _OWN_TESTS.is_dir():
        from tests.needs import NEEDS

        for name, (_, hint) in NEEDS.items():
            config.addinivalue_line(
                "markers", f"{name}: skipped without it, failed under CI ({hint})"
            )


@pytest.hookimpl(tryfirst=True)  # before the fixtures that would use what is missing
def pytest_runtest_setup(item: pytest.Item) -> None:
    """What a test needs, checked before it runs (tests/needs.py's policy)."""
    names = {m.name for m in item.iter_markers() if m.name.startswith("needs_")}
    if names:
        from tests.needs import check

        for name in sorted(names):
            check(name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).parts
        if "tests" in parts:
            tier = parts[parts.index("tests") + 1] if parts.index("tests") + 1 < len(parts) else ""
            marker = _TIERS.get(tier)
            if marker:
                item.add_marker(marker)
        elif "scenarios" in parts:
            item.add_marker("e2e")  # each runs against a whole service


class UnitStartedAProcess(AssertionError):
    """A unit test started a process: it belongs in tests/integration or e2e."""


@pytest.fixture(autouse=True)
def _unit_tier_starts_no_process(request: pytest.FixtureRequest) -> Iterator[None]:
    """The unit tier stays fast by starting nothing: any process it would start
    fails the test, with where it belongs."""
    if request.node.get_closest_marker("unit") is None:
        yield
        return
    import os
    import subprocess

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise UnitStartedAProcess(
            f"{request.node.nodeid} started a process ({args[1] if len(args) > 1 else ''!r}): "
            "move it to tests/integration or tests/e2e"
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", refuse)
        patch.setattr(os, "fork", refuse)
        patch.setattr(os, "posix_spawn", refuse)
        yield
