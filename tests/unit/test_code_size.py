"""Step 12's rule, kept: no function over 80 lines and no module over 500 in
`harness/` and `reference_impl/`, unless the file gives its reason in a line
`# size: ...` (none does today)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parents[2]
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 80, 500


def _sources() -> list[Path]:
    files = [p for d in ("harness", "reference_impl") for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 50
    return sorted(p for p in files if "# size:" not in p.read_text())


def test_no_module_is_over_500_lines() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in _sources()}
    long = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert long == {}, "split these modules, or give the reason in a '# size:' line"


def test_no_function_is_over_80_lines() -> None:
    long: dict[str, int] = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert long == {}, "split these functions, or give the reason in a '# size:' line"
