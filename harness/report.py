"""Reports: the final table, report.json, junit.xml, history.jsonl, report.html."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.table import Table

from harness.history import History
from harness.reproduce import reproduce_command
from harness.runner import ScenarioReport

Verdict = Literal["pass", "fail", "error"]


@dataclass
class RunReport:
    target: str
    seed: int
    run_id: str
    scenarios: list[ScenarioReport]
    command: list[str]

    @property
    def verdict(self) -> Verdict:
        """`fail` if any scenario found a violation, whatever else could not run
        (a finding must never hide behind an error); `error` only when nothing
        failed and something could not run."""
        statuses = {s.status for s in self.scenarios}
        if "fail" in statuses:
            return "fail"
        return "error" if "error" in statuses else "pass"

    @property
    def could_not_run(self) -> list[ScenarioReport]:
        return [s for s in self.scenarios if s.status == "error"]

    def reproduce(self, item: ScenarioReport) -> str:
        return reproduce_command(self.command, item.scenario.id, self.seed)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "target": self.target,
            "seed": self.seed,
            "run_id": self.run_id,
            "could_not_run": [s.scenario.id for s in self.could_not_run],
            "scenarios": [{**s.to_json(), "reproduce": self.reproduce(s)} for s in self.scenarios],
        }


def print_table(report: RunReport, console: Console) -> None:
    table = Table(title=f"tokenproof verify: {report.target} (seed {report.seed})")
    table.add_column("scenario")
    table.add_column("result")
    table.add_column("ops", justify="right")
    table.add_column("time", justify="right")
    table.add_column("violations")
    colors = {"pass": "green", "fail": "red", "error": "yellow"}
    for s in report.scenarios:
        detail = "; ".join(f"{v.invariant}: {v.message}" for v in s.violations[:3])
        if s.error:
            detail = s.error.splitlines()[0]
        table.add_row(
            s.scenario.id,
            f"[{colors[s.status]}]{s.status}[/]",
            str(s.op_count),
            f"{s.duration_s:.1f} s",
            detail,
        )
    console.print(table)
    for s in report.scenarios:
        if s.status != "pass":
            console.print(f"[bold]{s.scenario.id}[/] reproduce: {report.reproduce(s)}")
    if report.could_not_run:
        console.print(
            f"[yellow]{len(report.could_not_run)} scenario(s) could not run:[/] "
            + ", ".join(s.scenario.id for s in report.could_not_run)
        )
    console.print(f"verdict: [{colors[report.verdict]}]{report.verdict}[/]")


def write_reports(report: RunReport, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(json.dumps(report.to_json(), indent=2, default=str))
    history = History(ops=[op for s in report.scenarios for op in s.ops])
    history.write_jsonl(directory / "history.jsonl")
    (directory / "junit.xml").write_text(junit(report))
    (directory / "report.html").write_text(html_report(report))


def junit(report: RunReport) -> str:
    suites = ET.Element("testsuites", name="tokenproof")
    by_suite: dict[str, list[ScenarioReport]] = {}
    for s in report.scenarios:
        by_suite.setdefault(s.scenario.suite, []).append(s)
    for name, items in by_suite.items():
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=name,
            tests=str(len(items)),
            failures=str(sum(s.status == "fail" for s in items)),
            errors=str(sum(s.status == "error" for s in items)),
        )
        for s in items:
            case = ET.SubElement(
                suite, "testcase", classname=name, name=s.scenario.name, time=f"{s.duration_s:.3f}"
            )
            if s.status == "fail":
                failure = ET.SubElement(
                    case, "failure", message="; ".join(v.invariant for v in s.violations)
                )
                failure.text = "\n".join(v.message for v in s.violations) + (
                    "\nreproduce: " + report.reproduce(s)
                )
            elif s.status == "error":
                error = ET.SubElement(case, "error", message=(s.error or "").splitlines()[0])
                error.text = s.error
    return ET.tostring(suites, encoding="unicode")


def _timeline_svg(s: ScenarioReport) -> str:
    """Ops per worker over time: a bar from invoke to completion, colored by outcome."""
    invokes = {op.process: op for op in s.ops if op.type == "invoke"}
    done = [op for op in s.ops if op.type != "invoke"]
    if not done:
        return "<p>no ops</p>"
    workers = sorted({op.worker for op in done}, key=lambda w: (len(w), w))[:60]
    end = max(op.time_s for op in done) or 1.0
    row_h, width = 8, 900
    colors = {"ok": "#2a2", "fail": "#888", "info": "#d22"}
    bars = []
    for op in done:
        if op.worker not in workers:
            continue
        start = invokes[op.process].time_s
        y = workers.index(op.worker) * row_h
        x = start / end * width
        w = max(1.0, (op.time_s - start) / end * width)
        title = html.escape(f"{op.f} {op.user} -> {op.status} ({op.type})")
        bars.append(
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 1}" '
            f'fill="{colors[op.type]}"><title>{title}</title></rect>'
        )
    height = len(workers) * row_h
    return f'<svg width="{width}" height="{height}">{"".join(bars)}</svg>'


def balance_points(s: ScenarioReport, user: str) -> list[tuple[float, int]]:
    """The balances the service reported for `user` over time (from 200 answers)."""
    points = []
    for op in s.ops:
        if op.type != "ok" or not isinstance(op.body, dict):
            continue
        if op.user == user and isinstance(op.body.get("senderBalance"), int):
            points.append((op.time_s, op.body["senderBalance"]))
        elif op.args.get("creatorId") == user and isinstance(op.body.get("recipientBalance"), int):
            points.append((op.time_s, op.body["recipientBalance"]))
    return points


def _balance_svg(points: list[tuple[float, int]]) -> str:
    if len(points) < 2:
        return ""
    width, height = 600, 120
    t0, t1 = points[0][0], points[-1][0] or 1.0
    low, high = min(b for _, b in points), max(b for _, b in points)
    span_t, span_b = (t1 - t0) or 1.0, (high - low) or 1
    coords = " ".join(
        f"{(t - t0) / span_t * width:.1f},{height - (b - low) / span_b * height:.1f}"
        for t, b in points
    )
    return (
        f'<p>reported balance over time ({low}..{high})</p><svg width="{width}" '
        f'height="{height}"><polyline fill="none" stroke="#36c" points="{coords}"/></svg>'
    )


def html_report(report: RunReport) -> str:
    parts = [
        "<!doctype html><meta charset=utf-8><title>tokenproof report</title>",
        "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:.5em;"
        "overflow:auto}.pass{color:#2a2}.fail{color:#d22}.error{color:#c80}</style>",
        f"<h1>tokenproof: <span class={report.verdict}>{report.verdict}</span></h1>",
        f"<p>target {html.escape(report.target)}, seed {report.seed}, run {report.run_id}</p>",
    ]
    for s in report.scenarios:
        parts.append(
            f"<h2>{html.escape(s.scenario.id)} <span class={s.status}>{s.status}</span> "
            f"({s.duration_s:.1f} s)</h2><p>{html.escape(s.scenario.doc)}</p>"
        )
        parts.append("<h3>ops per worker (green ok, grey refused, red unknown)</h3>")
        parts.append(_timeline_svg(s))
        if s.error:
            parts.append(f"<pre>{html.escape(s.error)}</pre>")
        for v in s.violations:
            parts.append(
                f"<h3>{html.escape(v.invariant)}</h3><p>{html.escape(v.message)}</p>"
                f"<pre>{html.escape(json.dumps(v.evidence, indent=2, default=str))}</pre>"
            )
            user = v.evidence.get("user") or v.evidence.get("creator")
            if isinstance(user, str):
                parts.append(_balance_svg(balance_points(s, user)))
        if s.status != "pass":
            parts.append(f"<p>reproduce:</p><pre>{html.escape(report.reproduce(s))}</pre>")
    return "\n".join(parts)
