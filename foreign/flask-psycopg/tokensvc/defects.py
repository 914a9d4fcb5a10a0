"""Deliberate defects for tokenproof, one at a time: TOKENPROOF_DEFECT=<name>.

Unset (the default) means the correct service. The names and what each one
breaks are listed in ../defects.json; an unknown name refuses to start so a
typo never silently runs the correct build.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

_CATALOGUE = Path(__file__).resolve().parent.parent / "defects.json"
KNOWN: frozenset[str] = frozenset(json.loads(_CATALOGUE.read_text()))
ACTIVE: str | None = os.environ.get("TOKENPROOF_DEFECT", "").strip() or None

if ACTIVE is not None and ACTIVE not in KNOWN:
    raise RuntimeError(f"TOKENPROOF_DEFECT={ACTIVE!r} is not one of {sorted(KNOWN)}")


def on(name: str) -> bool:
    """True when the named defect is switched on."""
    assert name in KNOWN, name
    return ACTIVE == name
