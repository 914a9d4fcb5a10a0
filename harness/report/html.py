"""report.html of a verify run: what failed and why on the first screen; each
failing scenario with what it forces, its violations' evidence as tables, the
reproduction command and a timeline; passing scenarios folded away."""

from __future__ import annotations

import html
import inspect
import re
from collections import Counter

from harness.checkers import CheckResult, Violation
from harness.report.evidence import as_rows, render_evidence, rows_table
from harness.report.page import anchor, badge, command, document
from harness.report.plots import balance_chart, named_processes, timeline_legend, timeline_svg
from harness.report.summary import RunReport, error_line, plural, settle_line
from harness.run.runner import ScenarioReport

ORDER = {"fail": 0, "error": 1, "pass": 2}
STATUS_WORDS = {"fail": "fail", "error": "could not run", "pass": "pass"}
VIOLATIONS_SHOWN = 6
OUTCOME_WORDS = {"ok": "ok", "fail": "refused", "info": "unknown", "open": "never answered"}


def _doc(s: ScenarioReport) -> str:
    return inspect.cleandoc(s.scenario.doc or "")


def _first_sentence(text: str) -> str:
    line = " ".join(text.split())
    cut = line.find(". ")
    return line if cut < 0 else line[: cut + 1]


def _what_went_wrong(s: ScenarioReport) -> str:
    if s.status == "error":
        return html.escape(error_line(s.error or ""))
    if s.status == "pass":
        checked = sum(r.checked for r in s.results)
        return f"{plural(len(s.results), 'check')} held ({checked:,} things checked)"
    counts = Counter(v.invariant for v in s.violations)
    kinds = ", ".join(
        f"<b>{html.escape(k)}</b>" + (f" \u00d7{n}" if n > 1 else "") for k, n in counts.items()
    )
    first = headline(s.violations[0].message) if s.violations else ""
    return f"{kinds}: {html.escape(first)}"


HEADLINE_CHARS = 240


def headline(message: str) -> str:
    """One line that says what broke: a multi-line message (the model's, with
    Hypothesis's steps) is summed up by its first exception line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1:
        exceptions = [line for line in lines if re.match(r"[\w.]*(Error|Exception):", line)]
        plain = [line for line in lines if not line.startswith("WARNING")]
        lines = exceptions or plain or lines
    line = lines[0] if lines else ""
    return line if len(line) <= HEADLINE_CHARS else line[: HEADLINE_CHARS - 3] + "..."


def _message(message: str) -> str:
    text = f'<p class="msg">{html.escape(headline(message))}</p>'
    if "\n" in message.strip() or len(message) > HEADLINE_CHARS:
        text += f'<pre class="wrap">{html.escape(message.strip())}</pre>'
    return text


def _header(report: RunReport) -> str:
    errors = report.could_not_run
    total = len(report.scenarios)
    if report.verdict == "fail":
        why = f"{report.headline}, of {total} scenarios"
        if errors:
            why += f"; {len(errors)} could not run"
    elif report.verdict == "error":
        why = f"nothing failed, but {len(errors)} of {total} scenarios could not run"
    else:
        why = f"all {total} scenarios held every invariant"
    return (
        f'<span class="word">{report.verdict.upper()}</span>'
        f'<span class="why">{html.escape(why)}</span>'
        f'<div class="meta">target <code>{html.escape(report.target)}</code> · seed '
        f"<code>{report.seed}</code> · run <code>{html.escape(report.run_id)}</code> · "
        f"{sum(s.op_count for s in report.scenarios):,} requests in "
        f"{sum(s.duration_s for s in report.scenarios):.1f} s</div>"
    )


def _problems(report: RunReport) -> str:
    """The problems first: each likely defect once, what it breaks and how to see it."""
    problems = report.problems
    if not problems:
        return ""
    items = []
    for number, problem in enumerate(problems, start=1):
        scenarios = ", ".join(
            f'<a href="#{anchor(sid)}">{html.escape(sid)}</a>' for sid in problem.scenarios
        )
        invariants = " ".join(badge("fail", i) for i in problem.invariants)
        items.append(
            f'<li class="problem"><p class="msg"><b>{number}. {html.escape(problem.title)}</b></p>'
            f'<p class="muted">{html.escape(problem.headline)}</p>'
            f"<p>{invariants} · {html.escape(problem.phase)} · seen in {scenarios}</p>"
            f"{command('reproduce', report.problem_reproduce(problem))}</li>"
        )
    return f"<h2>{html.escape(report.headline)}</h2><ol class=problems>{''.join(items)}</ol>"


def _cards(report: RunReport) -> str:
    counts = Counter(s.status for s in report.scenarios)
    violations = sum(len(s.violations) for s in report.scenarios)
    cards = [
        ("fail", counts["fail"], "scenarios failed"),
        ("pass", counts["pass"], "scenarios passed"),
        ("error", counts["error"], "could not run"),
        ("fail" if violations else "pass", violations, "violations"),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card {cls if n else ""}"><b>{n}</b>{html.escape(label)}</div>'
            for cls, n, label in cards
        )
        + "</div>"
    )


def _by_invariant(report: RunReport) -> str:
    rows: dict[str, list[ScenarioReport]] = {}
    counts: Counter[str] = Counter()
    for s in report.scenarios:
        for v in s.violations:
            counts[v.invariant] += 1
            if s not in rows.setdefault(v.invariant, []):
                rows[v.invariant].append(s)
    if not counts:
        unknown = [(s, r) for s in report.scenarios for r in s.results if r.validity == "unknown"]
        if unknown:
            return (
                f"<h3>Checks that could not decide</h3><p>{len(unknown)} checker(s) crashed; "
                "their tracebacks are in the scenario sections.</p>"
            )
        return "<h3>Violations by invariant</h3><p>none</p>"
    body = "".join(
        f"<tr><td><b>{html.escape(inv)}</b></td><td class=num>{n}</td><td>"
        + ", ".join(
            f'<a href="#{anchor(s.scenario.id)}">{html.escape(s.scenario.id)}</a>'
            for s in rows[inv]
        )
        + "</td></tr>"
        for inv, n in counts.most_common()
    )
    return (
        '<h3>Violations by invariant</h3><table class="list by-invariant"><thead><tr>'
        "<th>invariant</th>"
        f"<th>count</th><th>in scenarios</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _row(s: ScenarioReport) -> str:
    return (
        f'<tr class="st-{s.status}"><td>{badge(s.status, STATUS_WORDS[s.status])}</td>'
        f'<td><a href="#{anchor(s.scenario.id)}">{html.escape(s.scenario.id)}</a></td>'
        f"<td>{_what_went_wrong(s)}</td><td class=num>{s.op_count:,}</td>"
        f"<td class=num>{s.duration_s:.1f} s</td></tr>"
    )


def _scenario_table(ordered: list[ScenarioReport]) -> str:
    """Every scenario, failures first. When something failed, the passing ones
    fold into one row (a list of links) so the failures fill the first screen."""
    bad = [s for s in ordered if s.status != "pass"]
    good = [s for s in ordered if s.status == "pass"]
    rows = "".join(_row(s) for s in (bad if bad else good))
    if bad and good:
        links = "".join(
            f'<a href="#{anchor(s.scenario.id)}">{html.escape(s.scenario.id)}</a>' for s in good
        )
        rows += (
            f'<tr class="st-pass"><td>{badge("pass")}</td><td colspan=4><details>'
            f"<summary>{len(good)} scenarios passed (every invariant held)</summary>"
            f'<div class="passed">{links}</div></details></td></tr>'
        )
    title, detail = (
        ("Scenarios, failures first", "what went wrong") if bad else ("Scenarios", "checks")
    )
    return (
        f'<div><h3>{title}</h3><table class="list scenarios"><thead><tr>'
        f"<th>result</th><th>scenario</th><th>{detail}</th><th>requests</th><th>time</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _could_not_run(report: RunReport) -> str:
    if not report.could_not_run:
        return ""
    items = "".join(
        f'<li><a href="#{anchor(s.scenario.id)}">{html.escape(s.scenario.id)}</a></li>'
        for s in report.could_not_run
    )
    return (
        "<h3>Could not run</h3><p class=muted>These scenarios decided nothing; the verdict "
        f"cannot be a pass while any remain.</p><ul>{items}</ul>"
    )


def check_table(results: list[CheckResult], open_: bool) -> str:
    if not results:
        return ""
    rows = []
    for r in results:
        validity = badge(r.validity)
        error = f'<pre class="wrap">{html.escape(r.error)}</pre>' if r.error else ""
        rows.append(
            f"<tr><td>{html.escape(r.checker)}</td><td>{validity}</td>"
            f"<td class=num>{r.checked:,}</td><td class=num>{len(r.violations)}</td>"
            f"<td>{error}</td></tr>"
        )
    counts = Counter(r.validity for r in results)
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    return (
        f"<details{' open' if open_ else ''}><summary>checks: {summary}</summary>"
        '<table class="data"><thead><tr><th>checker</th><th>verdict</th><th>checked</th>'
        f"<th>violations</th><th>traceback</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></details>"
    )


GROUP_FROM = 3  # this many violations of one invariant, with flat evidence, share a table


def _violation_blocks(s: ScenarioReport) -> list[str]:
    t0 = min((op.time_s for op in s.ops), default=0.0)
    groups: dict[str, list[Violation]] = {}
    for v in s.violations:
        groups.setdefault(v.invariant, []).append(v)
    blocks = []
    for invariant, group in groups.items():
        rows = None
        if len(group) >= GROUP_FROM:
            rows = as_rows([v.evidence for v in group], [v.message for v in group])
        if rows is not None:
            blocks.append(
                f'<div class="violation"><h4>{html.escape(invariant)} \u00d7{len(group)}</h4>'
                + _message(group[0].message)
                + f'<p class="muted">and {len(group) - 1} more like it:</p>'
                + rows_table(rows, t0)
                + "</div>"
            )
            continue
        blocks += [
            f'<div class="violation"><h4>{html.escape(v.invariant)}</h4>'
            + _message(v.message)
            + render_evidence(v.evidence, t0, balance_chart(s, v.evidence))
            + "</div>"
            for v in group
        ]
    return blocks


def _violations(s: ScenarioReport) -> str:
    blocks = _violation_blocks(s)
    shown = "".join(blocks[:VIOLATIONS_SHOWN])
    if len(blocks) > VIOLATIONS_SHOWN:
        shown += (
            f"<details><summary>{len(blocks) - VIOLATIONS_SHOWN} more</summary>"
            + "".join(blocks[VIOLATIONS_SHOWN:])
            + "</details>"
        )
    return f"<h3>Violations ({len(s.violations)})</h3>{shown}"


def _actions(s: ScenarioReport) -> str:
    if not s.actions:
        return ""
    return (
        "<h3>What tokenproof did to the service</h3><ul>"
        + "".join(f"<li>{at:.3f} s: {html.escape(what)}</li>" for at, what in s.actions)
        + "</ul>"
    )


def _timeline(s: ScenarioReport) -> str:
    if not s.ops:
        return _actions(s)
    marked: set[int] = set()
    for v in s.violations:
        marked |= named_processes(v.evidence)
    ends = Counter(op.type for op in s.ops if op.type != "invoke")
    calls = len({op.process for op in s.ops})
    open_ = calls - sum(ends.values())
    counts = ", ".join(
        f"{n} {OUTCOME_WORDS[k]}" for k, n in [*ends.most_common(), ("open", open_)] if n
    )
    return (
        f'<h3>Timeline <span class="muted">· {plural(calls, "call")}: {counts}</span></h3>'
        + timeline_legend(bool(marked))
        + timeline_svg(s.ops, marked)
        + _actions(s)
    )


def _notes(s: ScenarioReport) -> str:
    if not s.notes:
        return ""
    return "<h3>Notes</h3><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in s.notes) + "</ul>"


def _title(s: ScenarioReport) -> str:
    return (
        f"{badge(s.status, STATUS_WORDS[s.status])} {html.escape(s.scenario.id)} "
        f'<span class="muted">· {s.duration_s:.1f} s · {s.op_count:,} requests</span>'
    )


def _section(report: RunReport, s: ScenarioReport) -> str:
    doc = _doc(s)
    forces = f'<p class="doc"><b>What it forces:</b> {html.escape(doc)}</p>' if doc else ""
    if s.status == "pass":
        return (
            f'<details class="scenario st-pass" id="{anchor(s.scenario.id)}"><summary>'
            f'{_title(s)} <span class="muted">— {html.escape(_first_sentence(doc))}</span>'
            f"</summary>{forces}{check_table(s.results, True)}{_notes(s)}{_timeline(s)}</details>"
        )
    error = ""
    if s.error:
        error = f'<h3>Why it could not run</h3><pre class="wrap">{html.escape(s.error)}</pre>'
    return (
        f'<section class="scenario st-{s.status}" id="{anchor(s.scenario.id)}"><h2>{_title(s)}'
        f'<a class="up" href="#top">back to the summary</a></h2>{forces}'
        + command("reproduce", report.reproduce(s))
        + error
        + (_violations(s) if s.violations else "")
        + check_table(s.results, any(r.validity == "unknown" for r in s.results))
        + _notes(s)
        + _timeline(s)
        + "</section>"
    )


def html_report(report: RunReport) -> str:
    ordered = sorted(report.scenarios, key=lambda s: ORDER[s.status])
    body = (
        _problems(report)
        + _cards(report)
        + '<div class="summary-grid"><div>'
        + _by_invariant(report)
        + _could_not_run(report)
        + f'<h3>Settling</h3><p class="muted">{html.escape(settle_line(report))}</p>'
        + "</div>"
        + _scenario_table(ordered)
        + "</div>"
        + "".join(_section(report, s) for s in ordered)
    )
    return document(
        f"tokenproof {report.verdict}: {report.target}",
        report.verdict,
        _header(report),
        body,
    )
