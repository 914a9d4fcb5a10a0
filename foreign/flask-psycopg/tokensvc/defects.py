"""Deliberate defects for tokenproof: TOKENPROOF_DEFECT=<name>[,<name>...].

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
ON: frozenset[str] = frozenset(n.strip() for n in (ACTIVE or "").split(",") if n.strip())

if ON - KNOWN:
    raise RuntimeError(f"TOKENPROOF_DEFECT: {sorted(ON - KNOWN)} not among {sorted(KNOWN)}")


def on(name: str) -> bool:
    """True when the named defect is switched on."""
    assert name in KNOWN, name
    return name in ON
