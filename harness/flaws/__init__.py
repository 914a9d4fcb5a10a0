"""Flawed variants of the reference: each puts back one defect, as a small override.

`python -m harness.flaws NAME` serves the variant with the contract's
environment; `--target reference:NAME` selects it. They exist to prove that
the suites catch what they claim to (see `tokenproof selftest`).
"""

from __future__ import annotations

from harness.flaws.variants import FLAWS

__all__ = ["FLAWS"]
