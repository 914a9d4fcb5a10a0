"""Root conftest: sorts the project's own tests into cost tiers by folder.

tests/unit needs nothing; tests/integration talks to real servers over
loopback (PostgreSQL, the emulator); tests/e2e runs
whole processes. `make test-fast` runs only the first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_TIERS = {"unit": "unit", "integration": "integration", "e2e": "e2e"}


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so that running the bundled scenarios from another
    # folder (`pytest --pyargs scenarios`) knows the marker this file adds.
    for name, doc in (
        ("unit", "no database, no network; fast"),
        ("integration", "real servers over loopback (PostgreSQL, the Stripe emulator)"),
        ("e2e", "runs the CLI or whole processes end to end"),
    ):
        config.addinivalue_line("markers", f"{name}: {doc}")


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
