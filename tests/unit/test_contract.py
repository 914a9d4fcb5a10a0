"""The contract is the only judge: every invariant the code can report cites a
sentence that really is in the contract, and answers are compared only on the
fields the contract names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.contract import INVARIANTS, UncitedInvariant, citation, outcome

ROOT = Path(__file__).parents[2]
CONTRACT = ROOT / "docs" / "target-contract.md"
SHARED_CONTRACT = ROOT.parent / "shared" / "spec" / "target-contract.md"


def _folded(text: str) -> str:
    return " ".join(text.split())


def reported_invariants() -> set[str]:
    """Invariant names in the source: `Violation("name", ...)` and
    `run.expect(holds, "name", ...)` with a literal name."""
    names: set[str] = set()
    for folder in ("harness", "scenarios"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                if isinstance(func, ast.Name) and func.id == "Violation" and node.args:
                    arg = node.args[0]
                elif isinstance(func, ast.Attribute) and func.attr == "expect":
                    if len(node.args) < 2:
                        continue
                    arg = node.args[1]
                else:
                    continue
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
    return names


def test_every_reported_invariant_cites_the_contract() -> None:
    found = reported_invariants()
    assert len(found) > 30  # the scan itself works
    assert found <= set(INVARIANTS), f"uncited: {sorted(found - set(INVARIANTS))}"


def test_no_citation_is_dead() -> None:
    """Every cited invariant is named somewhere a check can report it."""
    sources = "\n".join(
        path.read_text()
        for folder in ("harness", "scenarios")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "contract.py"
    )
    dead = [name for name in INVARIANTS if f'"{name}"' not in sources]
    assert not dead, f"cited but never reported: {dead}"


def test_every_citation_is_verbatim_in_the_contract() -> None:
    contract = _folded(CONTRACT.read_text())
    for name, cited in INVARIANTS.items():
        assert cited.clause in contract, f"{name}: {cited.clause!r} is not in the contract"


def test_the_bundled_contract_is_the_shared_one() -> None:
    if not SHARED_CONTRACT.exists():
        pytest.skip(f"no shared spec beside this checkout ({SHARED_CONTRACT})")
    assert CONTRACT.read_text() == SHARED_CONTRACT.read_text(), (
        "docs/target-contract.md differs from shared/spec/target-contract.md: copy it over"
    )


def test_an_uncited_invariant_is_a_named_error() -> None:
    with pytest.raises(UncitedInvariant, match="add it to"):
        citation("faster-than-the-reference")


def test_outcomes_ignore_fields_the_contract_does_not_name() -> None:
    first = {"success": True, "tokensDeducted": 10, "senderBalance": 90, "recipientBalance": 10}
    replay = {**first, "timestamp": "2026-12-01T12:00:00Z", "idempotentReplay": True}
    assert outcome("tip", 200, first) == outcome("tip", 200, replay)
    assert outcome("tip", 200, first) != outcome("tip", 200, {**first, "senderBalance": 80})
    assert outcome("tip", 402, {"error": "a"}) == outcome("tip", 402, {"detail": "b"})
    pi = {"paymentIntent": {"id": "pi_1", "status": "succeeded", "client_secret": "x"}}
    assert outcome("purchase", 200, pi) == (200, "pi_1", "succeeded")
