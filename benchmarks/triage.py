"""How well violations are grouped into problems (harness/problems.py), over the
whole zoo: every foreign defect switched on alone with the suite that catches
it, and the multi-defect builds of tests/e2e/test_foreign.py.

    .venv/bin/python benchmarks/triage.py            # every foreign service
    .venv/bin/python benchmarks/triage.py --only node-bullmq

A problem is *right* when its invariants include one its defect is expected to
report (defects.json). Precision: right problems / problems reported. Recall:
defects with a problem of their own / defects switched on. Runs two at a time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from harness.cache import cache_dir
from tests.e2e.test_foreign import SEVERAL
from tests.foreign import Foreign, names, prepare

CACHE = cache_dir() / "foreign"


def problems_of(service: Foreign, defects: tuple[str, ...]) -> list[dict[str, Any]]:
    suites = sorted({s for d in defects for s in service.defects[d]["suite"].split(",")})
    with tempfile.TemporaryDirectory() as report:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "verify",
                *service.verify_args(",".join(defects)),
                "--suite",
                ",".join(suites),
                "--report",
                report,
            ],
            capture_output=True,
            timeout=1200,
            check=False,
        )
        data = json.loads((Path(report) / "report.json").read_text())
    found: list[dict[str, Any]] = data["problems"]
    return found


def score(service: Foreign, defects: tuple[str, ...]) -> tuple[int, int, int, str]:
    """(problems, right problems, defects found) and a line for the table."""
    problems = problems_of(service, defects)
    expected = {d: set(service.defects[d]["expect"]) for d in defects}
    right = [p for p in problems if any(e & set(p["invariants"]) for e in expected.values())]
    found = [d for d, e in expected.items() if any(e & set(p["invariants"]) for p in problems)]
    line = f"{service.name:<14} {','.join(defects):<60} problems {len(problems)}"
    return len(problems), len(right), len(found), line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", metavar="NAME", help="only this foreign service")
    options = parser.parse_args()
    runs: list[tuple[Foreign, tuple[str, ...]]] = []
    for name in names():
        if options.only not in (None, name):
            continue
        service = prepare(name, CACHE)
        runs += [(service, (d,)) for d, spec in service.defects.items() if spec.get("expect")]
        if name in SEVERAL:
            runs.append((service, SEVERAL[name]))
    totals = [0, 0, 0, 0]  # problems, right, defects found, defects on
    with ThreadPoolExecutor(2) as pool:
        for (problems, right, found, line), (_, defects) in zip(
            pool.map(lambda r: score(*r), runs), runs, strict=True
        ):
            print(line, flush=True)
            for i, n in enumerate((problems, right, found, len(defects))):
                totals[i] += n
    problems, right, found, on = totals
    print(
        f"\n{len(runs)} builds, {on} defects on, {problems} problems: "
        f"precision {right / max(problems, 1):.2f}, recall {found / max(on, 1):.2f}"
    )


if __name__ == "__main__":
    main()
