"""The HTML reports as a person sees them: opened in headless Chromium at
1400 px, looked at on the first screen, hovered, screenshotted. The runs are
hand-made (tests/report_data.py), so no service is needed; tests/e2e has the
same look at a real run's report.

Without chromium a developer's run skips with the reason; in CI it fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.report import write_reports
from harness.report.load_page import write_load_html
from tests.chromium import Chromium, Page, chromium, keep_artifact, require_chromium
from tests.report_data import drained_load, failing_run, passing_run

pytestmark = pytest.mark.needs_chromium

FAILING = ("race/drain-one-fan", "retry/same-key-concurrently", "race/drain-one-fan-gated")


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with chromium(require_chromium(), width=1400, height=900) as b:
        yield b


def _open(browser: Chromium, path: Path, javascript: bool = True) -> Page:
    return browser.open(path.resolve().as_uri(), javascript)


def _self_contained(page: Page, path: Path) -> None:
    assert page.console_errors() == []
    fetched = [u for u in page.requested_urls() if u != path.resolve().as_uri()]
    assert fetched == [], "the report must fetch nothing"


def _nothing_scrolls_sideways(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    cut = page.evaluate(
        """[...document.querySelectorAll('.cmd code, pre.wrap')]
             .filter(el => el.getClientRects().length && el.scrollWidth > el.clientWidth + 1)
             .map(el => el.textContent.slice(0, 60))"""
    )
    assert cut == [], "reproduction commands and tracebacks wrap, never scroll"


def test_failing_run_shows_what_failed_on_the_first_screen(
    browser: Chromium, tmp_path: Path
) -> None:
    write_reports(failing_run(), tmp_path)
    path = tmp_path / "report.html"
    page = _open(browser, path)
    shot = page.screenshot(tmp_path / "report-failing-run.png")
    keep_artifact(shot)

    assert page.evaluate("document.querySelector('header.verdict .word').innerText") == "FAIL"
    assert page.in_first_screen("header.verdict")
    for scenario_id in FAILING:  # listed first although the run had them last
        assert page.in_first_screen(f'table.scenarios a[href="#s-{scenario_id.replace("/", "-")}"]')
    assert page.in_first_screen("table.scenarios tr.st-fail:first-child")
    # Passing scenarios are folded: closed, their timelines not drawn.
    assert page.evaluate("document.getElementById('s-race-held-0').open") is False
    assert (
        page.evaluate("document.querySelector('#s-race-held-0 svg.timeline').checkVisibility()")
        is False
    )
    # Following a link to a folded scenario unfolds it.
    page.evaluate("location.hash = '#s-race-held-0'")
    page.wait_for("document.getElementById('s-race-held-0').open")
    _nothing_scrolls_sideways(page)
    _self_contained(page, path)


def test_hovering_an_op_shows_its_call_and_answer(browser: Chromium, tmp_path: Path) -> None:
    write_reports(failing_run(), tmp_path)
    page = _open(browser, tmp_path / "report.html")
    assert page.evaluate("document.getElementById('tip').hidden") is True
    # One of the three tips the violation names: outlined, and its row lights up.
    page.hover_element("#s-race-drain-one-fan g.op.marked")
    page.wait_for("!document.getElementById('tip').hidden")
    text = page.evaluate("document.getElementById('tip').innerText")
    assert "tip by run1-drain-fan" in text
    assert "200 ok" in text
    assert "creatorId" in text and "senderBalance" in text
    assert page.evaluate("document.querySelectorAll('#s-race-drain-one-fan tr.hot').length") == 1
    keep_artifact(page.screenshot(tmp_path / "report-hover.png"))
    # The call that never answered says so.
    page.hover_element("#s-retry-same-key-concurrently g.op.o-open")
    page.wait_for("document.getElementById('tip').innerText.includes('never answered')")
    # Off the bars (onto the section's heading), the tooltip goes away.
    page.hover_element("#s-retry-same-key-concurrently h2")
    page.wait_for("document.getElementById('tip').hidden")
    # The reproduction command's copy button answers.
    page.click_element("#s-race-drain-one-fan button.copy")
    page.wait_for(
        "document.querySelector('#s-race-drain-one-fan button.copy').innerText == 'copied'"
    )
    assert page.console_errors() == []


def test_summary_reads_without_javascript(browser: Chromium, tmp_path: Path) -> None:
    write_reports(failing_run(), tmp_path)
    page = _open(browser, tmp_path / "report.html", javascript=False)
    assert page.in_first_screen("header.verdict")
    assert page.in_first_screen('table.scenarios a[href="#s-race-drain-one-fan"]')
    # The timeline's native tooltips stay when no script replaces them.
    assert page.evaluate("document.querySelectorAll('svg.timeline g.op > title').length") > 0


def test_passing_run_is_one_calm_screen(browser: Chromium, tmp_path: Path) -> None:
    write_reports(passing_run(), tmp_path)
    path = tmp_path / "report.html"
    page = _open(browser, path)
    keep_artifact(page.screenshot(tmp_path / "report-passing-run.png"))
    assert page.evaluate("document.querySelector('header.verdict .word').innerText") == "PASS"
    assert page.in_first_screen("header.verdict")
    assert page.evaluate("document.querySelectorAll('details.scenario[open]').length") == 0
    assert page.evaluate("document.querySelectorAll('details.scenario').length") == 12
    assert page.evaluate("document.querySelectorAll('section.scenario').length") == 0
    _self_contained(page, path)


def test_load_report_plots_throughput_and_latency(browser: Chromium, tmp_path: Path) -> None:
    lines = ["Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%,99%"]
    lines += [
        f"{1700000000 + i},{min(20, 5 * i)},,Aggregated,{10 * i},{i % 2},{12 + i},40,{60 + i}"
        for i in range(10)
    ]
    (tmp_path / "locust_stats_history.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "locust.html").write_text("<!doctype html><title>locust</title>")
    path = write_load_html(drained_load(10), tmp_path)
    page = _open(browser, path)
    keep_artifact(page.screenshot(tmp_path / "report-load.png"))
    assert page.evaluate("document.querySelector('header.verdict .word').innerText") == "FAIL"
    assert page.in_first_screen("header.verdict")
    charts = "[...document.querySelectorAll('svg.chart')]"
    assert page.evaluate(f"{charts}.filter(s => s.checkVisibility()).length") == 3
    _nothing_scrolls_sideways(page)
    _self_contained(page, path)
