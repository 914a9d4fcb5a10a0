"""The reference token service: the hardening patches, with their defects fixed.

Never imports the harness: it is a service like any other target.
"""

from __future__ import annotations

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def schema_files() -> list[Path]:
    """The migration files, in the order they apply."""
    return sorted(MIGRATIONS_DIR.glob("*.sql"))
