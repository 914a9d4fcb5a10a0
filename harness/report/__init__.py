"""Reports of a run: the terminal table, report.json, junit.xml, history.jsonl
and report.html (a page for a person: summary first, failures with their
evidence, timelines and plots; one self-contained file)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.history import History
from harness.report.html import html_report
from harness.report.junit import junit
from harness.report.plots import balance_points
from harness.report.summary import RunReport, print_table
from harness.verdict import Verdict

__all__ = [
    "RunReport",
    "Verdict",
    "balance_points",
    "html_report",
    "junit",
    "print_table",
    "write_reports",
]


def write_reports(report: RunReport, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(json.dumps(report.to_json(), indent=2, default=str))
    history = History(ops=[op for s in report.scenarios for op in s.ops])
    history.write_jsonl(directory / "history.jsonl")
    (directory / "junit.xml").write_text(junit(report))
    (directory / "report.html").write_text(html_report(report), encoding="utf-8")
