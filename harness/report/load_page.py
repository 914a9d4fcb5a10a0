"""report.html of a load run: the verdict and violations on top, throughput and
latency over time from Locust's `locust_stats_history.csv`, the per-endpoint
table, each violation's evidence; Locust's own HTML stays linked."""

from __future__ import annotations

import csv
import html
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from harness.checkers.result import Violation
from harness.report.evidence import render_evidence
from harness.report.html import check_table
from harness.report.page import badge, document
from harness.report.plots import Chart, Series, line_chart
from harness.report.summary import plural

if TYPE_CHECKING:
    from harness.load.report import LoadReport

VIOLATIONS_SHOWN = 30
ENDPOINT_COLUMNS = (
    ("Name", "endpoint"),
    ("Request Count", "requests"),
    ("Failure Count", "failures"),
    ("Requests/s", "req/s"),
    ("50%", "p50 ms"),
    ("95%", "p95 ms"),
    ("99%", "p99 ms"),
    ("Max Response Time", "max ms"),
)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "N/A") else None
    except ValueError:
        return None


def history_charts(path: Path) -> str:
    """Throughput and latency per second of the run (Locust's aggregated rows)."""
    if not path.exists():
        return f'<p class="muted">no {html.escape(path.name)}: Locust wrote no history</p>'
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("Name") == "Aggregated"]
    stamps = [_number(r.get("Timestamp")) for r in rows]
    if not rows or None in stamps:
        return f'<p class="muted">{html.escape(path.name)} has no aggregated rows</p>'
    start = min(s for s in stamps if s is not None)

    def series(column: str) -> list[tuple[float, float]]:
        points = []
        for stamp, row in zip(stamps, rows, strict=True):
            value = _number(row.get(column))
            if stamp is not None and value is not None:
                points.append((stamp - start, value))
        return points

    throughput = Chart(
        "throughput",
        "s since the load started",
        "requests / s",
        [
            Series("requests/s", "#1f6feb", series("Requests/s")),
            Series(
                "failures/s (Locust's count: refusals and errors)", "#cf222e", series("Failures/s")
            ),
        ],
        width=620,
    )
    latency = Chart(
        "latency (over the last seconds, Locust's window)",
        "s since the load started",
        "ms",
        [
            Series("p50", "#1a7f37", series("50%")),
            Series("p95", "#bf8700", series("95%")),
            Series("p99", "#cf222e", series("99%")),
        ],
        width=620,
    )
    users = Chart(
        "users",
        "s since the load started",
        "users",
        [Series("simulated users", "#8250df", series("User Count"), step=True)],
        width=620,
        height=150,
    )
    charts = "".join(line_chart(c) for c in (throughput, latency, users))
    return f'<div class="charts">{charts}</div>'


def _endpoints(stats: list[dict[str, str]]) -> str:
    if not stats:
        return ""
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in ENDPOINT_COLUMNS)
    rows = []
    for row in stats:
        cells = []
        for column, _ in ENDPOINT_COLUMNS:
            value = row.get(column, "")
            number = _number(value)
            if column == "Name":
                kind = row.get("Type", "")
                cells.append(f"<td>{html.escape(f'{kind} {value}'.strip())}</td>")
            elif number is not None:
                shown = f"{number:,.1f}" if column == "Requests/s" else f"{number:,.0f}"
                cells.append(f'<td class="num">{shown}</td>')
            else:
                cells.append(f"<td>{html.escape(value)}</td>")
        cls = ' class="total"' if row.get("Name") == "Aggregated" else ""
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (
        '<h3>Per endpoint (Locust)</h3><table class="data"><thead><tr>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def load_html(report: LoadReport, directory: Path) -> str:
    s = report.settings
    requests = report.requests_checked
    outcomes = Counter(report.outcomes)
    server_errors = report.server_errors
    violations = report.violations
    by_invariant = Counter(v.invariant for v in violations)
    verdict = report.verdict
    crashed = [r.checker for r in report.results if r.validity == "unknown"]
    why = (
        f"{plural(len(violations), 'violation')} of {plural(len(by_invariant), 'invariant')} "
        f"in {requests:,} requests"
        if violations
        else f"checkers {', '.join(crashed)} could not decide over {requests:,} requests"
        if crashed
        else f"every invariant held over {requests:,} requests"
    )
    header = (
        f'<span class="word">{verdict.upper()}</span><span class="why">{html.escape(why)}</span>'
        f'<div class="meta">load on <code>{html.escape(report.target)}</code> · {s.users} users '
        f"(spawn {s.spawn_rate:g}/s) for {s.duration_s} s · {s.processes} Locust process(es)"
        f"{' · webhook chaos' if s.webhook_chaos else ''} · Locust exit {report.locust_exit} · "
        f"{report.duration_s:.0f} s wall time · seed {report.seed}</div>"
    )
    if report.workers and report.settings.distributed:
        header += f'<div class="meta">{html.escape(report.worker_line())}</div>'
    if report.stopped_early:
        header += f'<div class="meta">{html.escape(report.stopped_early)}</div>'
    cards = [
        ("fail" if violations else "pass", len(violations), "violations"),
        ("", requests, "requests"),
        ("", outcomes["ok"], "ok (2xx)"),
        ("", outcomes["fail"], "refused (4xx)"),
        ("error" if outcomes["info"] else "", outcomes["info"], "unknown (5xx / no answer)"),
        ("fail" if server_errors else "", server_errors, "5xx"),
    ]
    body = ['<div class="cards">']
    body += [
        f'<div class="card {cls if n else ""}"><b>{n:,}</b>{html.escape(label)}</div>'
        for cls, n, label in cards
    ]
    body.append("</div>")
    links = [
        (name, label)
        for name, label in (
            ("locust.html", "Locust's own report"),
            ("load.json", "load.json"),
            ("locust_stats.csv", "stats CSV"),
            ("locust_stats_history.csv", "history CSV"),
            ("locust.log", "Locust's log"),
        )
        if (directory / name).exists() or name == "load.json"
    ]
    body.append(
        "<p>"
        + " · ".join(f'<a href="{html.escape(n)}">{html.escape(label)}</a>' for n, label in links)
        + "</p>"
    )
    if violations:
        rows = "".join(
            f"<tr><td><b>{html.escape(inv)}</b></td><td class=num>{n}</td><td>"
            f"{html.escape(next(v.message for v in violations if v.invariant == inv))}</td></tr>"
            for inv, n in by_invariant.most_common()
        )
        body.append(
            '<h3>Violations by invariant</h3><table class="list by-invariant"><thead><tr>'
            "<th>invariant</th>"
            f"<th>count</th><th>first example</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    body.append("<h3>Over time</h3>" + history_charts(directory / "locust_stats_history.csv"))
    body.append(_endpoints(report.stats))
    body.append(
        "<h3>Checks</h3>" + check_table(report.results, any(r.error for r in report.results))
    )
    if violations:
        body.append(_violations_section(report, violations))
    return document(f"tokenproof load {verdict}: {report.target}", verdict, header, "".join(body))


def _violations_section(report: LoadReport, violations: list[Violation]) -> str:
    """Each violation with its evidence laid out as data (the first few)."""
    t0 = 0.0  # op times count from the run's start
    shown = violations[:VIOLATIONS_SHOWN]
    parts = [f'<section class="scenario st-fail"><h2>{badge("fail")} Violations</h2>']
    parts += [
        f'<div class="violation"><h4>{html.escape(v.invariant)}</h4>'
        f'<p class="msg">{html.escape(v.message)}</p>{render_evidence(v.evidence, t0)}</div>'
        for v in shown
    ]
    if len(violations) > len(shown):
        parts.append(f'<p class="muted">{len(violations) - len(shown)} more in load.json</p>')
    parts.append("</section>")
    return "".join(parts)


def write_load_html(report: LoadReport, directory: Path) -> Path:
    path = directory / "report.html"
    path.write_text(load_html(report, directory), encoding="utf-8")
    return path
