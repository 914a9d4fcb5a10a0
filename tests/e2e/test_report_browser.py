"""A real run's report.html in headless Chromium: `tokenproof verify` against
the lost-update variant, then what a person sees (tests/integration has the
detailed checks on hand-made runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chromium import chromium, keep_artifact, require_chromium

pytestmark = pytest.mark.needs_chromium

SCENARIO = "race/drain-one-fan-gated"  # the gate makes the lost update certain


def test_a_real_failing_run_reads_in_the_browser(tmp_path: Path) -> None:
    binary = require_chromium()
    env = {k: v for k, v in os.environ.items() if k != "TOKENPROOF_DATABASE_URL"}
    command = ["verify", "--target", "reference:lost-update", "--scenario", SCENARIO]
    result = subprocess.run(
        [sys.executable, "-m", "harness", *command, "--report", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    path = tmp_path / "report.html"
    section = "#s-race-drain-one-fan-gated"
    with chromium(binary) as browser:
        page = browser.open(path.resolve().as_uri())
        keep_artifact(page.screenshot(tmp_path / "report-real-run.png"))
        assert page.evaluate("document.querySelector('header.verdict .word').innerText") == "FAIL"
        assert page.in_first_screen(f'table.scenarios a[href="{section}"]')
        row = page.evaluate("document.querySelector('table.scenarios tbody tr').innerText")
        assert "ledger-explains-balance" in row
        # The balance plot and the timeline of the real history are drawn.
        assert page.evaluate(f"document.querySelector('{section} svg.chart').checkVisibility()")
        bars = page.evaluate(f"document.querySelectorAll('{section} svg.timeline g.op').length")
        assert bars == 20
        page.hover_element(f"{section} svg.timeline g.op")
        page.wait_for("document.getElementById('tip').innerText.includes('tip by')")
        assert page.console_errors() == []
        assert [u for u in page.requested_urls() if u != path.resolve().as_uri()] == []
