"""Inline SVG: the op timeline of a scenario and small line charts with axes.

Everything here returns markup to embed in a page: no scripts, no fetches.
The page's script adds the rich hover (see `page.py`); each bar also carries a
`<title>`, so a browser without JavaScript still names the op on hover.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.history import Op
from harness.run.runner import ScenarioReport

TRANSFERS = ("tip", "deduct")
# What each outcome means, in the words the legend uses.
OUTCOMES = {
    "ok": "ok (2xx: happened)",
    "fail": "refused (4xx: did not happen)",
    "info": "unknown (5xx or no answer)",
    "open": "never answered",
}
MAX_LANES = 64
MAX_BARS = 3000
BODY_CHARS = 1500


def nice_ticks(low: float, high: float, count: int = 8) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering low..high."""
    span = high - low
    if span <= 0:
        return [low]
    magnitude = 10 ** math.floor(math.log10(span / count))
    step = next(m * magnitude for m in (1, 2, 5, 10) if span / (m * magnitude) <= count)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    k = 0
    while first + k * step <= high + step * 1e-9:
        ticks.append(round(first + k * step, 10))
        k += 1
    return ticks


def _fmt(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 1 else f"{value:,.1f}"


@dataclass(frozen=True)
class _Bar:
    process: int
    worker: str
    f: str
    start: float
    end: float
    outcome: str  # ok / fail / info / open
    detail: dict[str, Any]


def _bars(ops: Sequence[Op]) -> tuple[list[_Bar], float, float]:
    """One bar per call, from its invoke to its completion (or to the end)."""
    invokes: dict[int, Op] = {}
    done: dict[int, Op] = {}
    for op in ops:
        (invokes if op.type == "invoke" else done)[op.process] = op
    if not invokes and not done:
        return [], 0.0, 0.0
    times = [op.time_s for op in ops]
    t0, t1 = min(times), max(times)
    bars = []
    for process, invoke in invokes.items():
        end_op = done.get(process)
        outcome = end_op.type if end_op else "open"
        last = end_op or invoke
        detail = {
            "f": invoke.f,
            "user": invoke.user,
            "worker": invoke.worker,
            "args": invoke.args,
            "outcome": outcome,
            "status": last.status,
            "body": _clip(last.body),
            "error": last.error,
            "start_ms": round((invoke.time_s - t0) * 1000, 1),
            "end_ms": round((last.time_s - t0) * 1000, 1) if end_op else None,
            "process": process,
        }
        end = end_op.time_s if end_op else t1
        bars.append(_Bar(process, invoke.worker, invoke.f, invoke.time_s, end, outcome, detail))
    bars.sort(key=lambda b: b.start)
    return bars, t0, t1


def _clip(body: Any) -> Any:
    text = json.dumps(body, default=str)
    if len(text) <= BODY_CHARS:
        return body
    return text[:BODY_CHARS] + f"... ({len(text) - BODY_CHARS} more characters)"


def _lane_key(worker: str) -> tuple[str, int, str]:
    """w2 before w10."""
    head = worker.rstrip("0123456789")
    tail = worker[len(head) :]
    return (head, int(tail) if tail else -1, worker)


def named_processes(value: Any) -> set[int]:
    """The calls an evidence value names: every op dict (`process`, `type`, `f`) in it."""
    found: set[int] = set()
    if isinstance(value, dict):
        if {"process", "type", "f"} <= value.keys() and isinstance(value["process"], int):
            found.add(value["process"])
        for item in value.values():
            found |= named_processes(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= named_processes(item)
    return found


def timeline_svg(ops: Sequence[Op], highlight: Iterable[int] = ()) -> str:
    """Calls per worker on a time axis in ms; hover names the call; calls a
    violation names are outlined."""
    bars, t0, t1 = _bars(ops)
    if not bars:
        return '<p class="muted">no requests recorded</p>'
    marked = set(highlight)
    lanes = sorted({b.worker for b in bars}, key=_lane_key)
    hidden_lanes = max(0, len(lanes) - MAX_LANES)
    lanes = lanes[:MAX_LANES]
    lane_of = {w: i for i, w in enumerate(lanes)}
    drawn = [b for b in bars if b.worker in lane_of]
    # Keep every marked call; thin the rest if there are too many to draw.
    if len(drawn) > MAX_BARS:
        keep = [b for b in drawn if b.process in marked]
        rest = [b for b in drawn if b.process not in marked]
        drawn = keep + rest[: max(0, MAX_BARS - len(keep))]
    span_ms = max((t1 - t0) * 1000, 1.0)
    label_w, plot_w, axis_h, lane_h = 64, 1080, 24, 16
    width = label_w + plot_w + 16
    height = axis_h + len(lanes) * lane_h + 8

    def x(t: float) -> float:
        return label_w + (t - t0) * 1000 / span_ms * plot_w

    parts = [
        f'<svg class="timeline" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="requests per worker over time">'
    ]
    for i, lane in enumerate(lanes):
        y = axis_h + i * lane_h
        if i % 2:
            parts.append(
                f'<rect class="lane" x="{label_w}" y="{y}" width="{plot_w}" height="{lane_h}"/>'
            )
        parts.append(
            f'<text class="lane-label" x="{label_w - 6}" y="{y + lane_h - 4}" '
            f'text-anchor="end">{html.escape(lane)}</text>'
        )
    for tick in nice_ticks(0, span_ms, 12):
        tx = label_w + tick / span_ms * plot_w
        parts.append(
            f'<line class="grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="{axis_h - 4}" y2="{height - 8}"/>'
            f'<text class="tick" x="{tx:.1f}" y="{axis_h - 8}" text-anchor="middle">'
            f"{_fmt(tick)}</text>"
        )
    parts.append(
        f'<text class="tick" x="{label_w - 6}" y="{axis_h - 8}" text-anchor="end">ms</text>'
    )
    for b in sorted(drawn, key=lambda b: b.process in marked):  # marked ones on top
        y = axis_h + lane_of[b.worker] * lane_h + 2
        parts.append(_bar_svg(b, x(b.start), x(b.end), y, lane_h - 4, b.process in marked))
    parts.append("</svg>")
    notes = []
    if hidden_lanes:
        notes.append(f"{hidden_lanes} more workers not drawn")
    if len(drawn) < len([b for b in bars if b.worker in lane_of]):
        notes.append(f"{len(drawn)} of {len(bars)} calls drawn")
    note = f'<p class="muted">{"; ".join(notes)}</p>' if notes else ""
    return f'<div class="timeline-box">{"".join(parts)}</div>{note}'


def _bar_svg(b: _Bar, left: float, right: float, y: float, height: int, marked: bool) -> str:
    """One call: a bar from invoke to answer, its details in `data-op` for hover."""
    width = max(2.0, right - left)
    classes = f"op o-{b.outcome}" + (" marked" if marked else "")
    title = f"{b.f} {b.detail['user'] or ''} -> {b.detail['status'] or b.outcome}"
    label = ""
    if width > 8 * len(b.f) + 6:
        label = f'<text class="op-label" x="{left + 3:.1f}" y="{y + 9.5}">{html.escape(b.f)}</text>'
    return (
        f'<g class="{classes}" data-process="{b.process}" '
        f"data-op='{html.escape(json.dumps(b.detail, default=str), quote=True)}'>"
        f'<rect x="{left:.1f}" y="{y}" width="{width:.1f}" height="{height}" rx="2"/>'
        f"{label}<title>{html.escape(title)}</title></g>"
    )


def timeline_legend(with_marked: bool) -> str:
    items = [
        f'<span class="key"><svg width="18" height="12"><rect class="op-swatch o-{k}" '
        f'width="18" height="12" rx="2"/></svg>{html.escape(v)}</span>'
        for k, v in OUTCOMES.items()
    ]
    if with_marked:
        items.append(
            '<span class="key"><svg width="18" height="12"><rect class="op-swatch o-ok marked" '
            'x="1" y="1" width="16" height="10" rx="2"/></svg>named in a violation</span>'
        )
    return (
        '<div class="legend">One lane per worker; a bar runs from request to answer. '
        + "".join(items)
        + " Hover a bar for its call and answer.</div>"
    )


# ---- line charts -----------------------------------------------------------


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    points: list[tuple[float, float]]
    step: bool = False  # a value that holds until the next point
    dashed: bool = False
    dots: bool = False


@dataclass(frozen=True)
class Marker:
    """A horizontal reference line (e.g. a final value from the database)."""

    name: str
    color: str
    value: float


@dataclass(frozen=True)
class Chart:
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    markers: list[Marker] = field(default_factory=list)
    width: int = 560
    height: int = 200


def _bounds(chart: Chart) -> tuple[float, float, float, float]:
    """The x and y ranges that hold every point and marker, y padded by 8%."""
    points = [p for s in chart.series for p in s.points]
    xs = [p[0] for p in points]
    ys = [p[1] for p in points] + [m.value for m in chart.markers]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    pad = (y1 - y0) * 0.08
    return x0, x1 if x1 != x0 else x0 + 1, y0 - pad, y1 + pad


def _series_svg(s: Series, px: Callable[[float], float], py: Callable[[float], float]) -> list[str]:
    coords: list[tuple[float, float]] = []
    for i, (vx, vy) in enumerate(s.points):
        if s.step and i:
            coords.append((px(vx), coords[-1][1]))
        coords.append((px(vx), py(vy)))
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    out = [
        f'<polyline fill="none" stroke="{s.color}" stroke-width="2"{dash} points="'
        + " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
        + '"/>'
    ]
    if s.dots:
        out.extend(
            f'<circle cx="{px(vx):.1f}" cy="{py(vy):.1f}" r="2.5" fill="{s.color}">'
            f"<title>{html.escape(s.name)}: {_fmt(vy)} at {_fmt(vx)}</title></circle>"
            for vx, vy in s.points
        )
    return out


def line_chart(chart: Chart) -> str:
    if not any(s.points for s in chart.series):
        return ""
    x0, x1, y0, y1 = _bounds(chart)
    left, right, top, bottom = 58, 12, 10, 34
    w, h = chart.width, chart.height
    pw, ph = w - left - right, h - top - bottom

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * ph

    out = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="{html.escape(chart.title)}">'
    ]
    for t in nice_ticks(y0, y1, 5):
        out.append(
            f'<line class="grid" x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}"/>'
            f'<text class="tick" x="{left - 5}" y="{py(t) + 4:.1f}" text-anchor="end">'
            f"{_fmt(t)}</text>"
        )
    for t in nice_ticks(x0, x1, 6):
        out.append(
            f'<line class="grid" x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{top + ph}"/>'
            f'<text class="tick" x="{px(t):.1f}" y="{top + ph + 14}" text-anchor="middle">'
            f"{_fmt(t)}</text>"
        )
    out.append(
        f'<rect class="frame" x="{left}" y="{top}" width="{pw}" height="{ph}"/>'
        f'<text class="axis-label" x="{left + pw / 2}" y="{h - 4}" text-anchor="middle">'
        f"{html.escape(chart.x_label)}</text>"
        f'<text class="axis-label" transform="translate(12 {top + ph / 2}) rotate(-90)" '
        f'text-anchor="middle">{html.escape(chart.y_label)}</text>'
    )
    for m in chart.markers:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{py(m.value):.1f}" y2="{py(m.value):.1f}" '
            f'stroke="{m.color}" stroke-width="1.5" stroke-dasharray="2 3"/>'
        )
    for s in chart.series:
        out += _series_svg(s, px, py)
    out.append("</svg>")
    keys = [
        f'<span class="key"><i style="border-color:{s.color}"'
        + (' class="dashed"' if s.dashed else "")
        + f"></i>{html.escape(s.name)}</span>"
        for s in chart.series
    ] + [
        f'<span class="key"><i class="dotted" style="border-color:{m.color}"></i>'
        f"{html.escape(m.name)}: {_fmt(m.value)}</span>"
        for m in chart.markers
    ]
    return (
        f'<figure class="chart-box"><figcaption>{html.escape(chart.title)}</figcaption>'
        f'{"".join(out)}<div class="legend">{"".join(keys)}</div></figure>'
    )


# ---- balances --------------------------------------------------------------


def balance_points(s: ScenarioReport, user: str) -> list[tuple[float, int]]:
    """The balances the service reported for `user` over time (from 2xx answers)."""
    points = []
    for op in s.ops:
        if op.type != "ok" or not isinstance(op.body, dict):
            continue
        body = op.body
        if op.user == user and isinstance(body.get("senderBalance"), int):
            points.append((op.time_s, body["senderBalance"]))
        elif op.args.get("creatorId") == user and isinstance(body.get("recipientBalance"), int):
            points.append((op.time_s, body["recipientBalance"]))
        elif op.f == "balance" and op.user == user and isinstance(body.get("balance"), int):
            points.append((op.time_s, body["balance"]))
    return points


def _signed_amount(op: Op, user: str) -> int:
    """Tokens an acknowledged tip or call moved for `user` (negative: sent)."""
    amount = op.args.get("tokenAmount")
    if op.f not in TRANSFERS or not isinstance(amount, int) or isinstance(amount, bool):
        return 0
    if op.user == user:
        return -amount
    if op.args.get("creatorId") == user:
        return amount
    return 0


def ledger_points(s: ScenarioReport, user: str, final_sum: int) -> list[tuple[float, int]]:
    """The user's ledger sum over time as the acknowledged tips and calls imply
    it: the final sum, stepped back through each 2xx transfer answer."""
    moves = [(op.time_s, _signed_amount(op, user)) for op in s.ops if op.type == "ok"]
    moves = [(t, a) for t, a in moves if a]
    if not moves:
        return []
    value = final_sum - sum(a for _, a in moves)
    start = min(op.time_s for op in s.ops)
    points = [(start, value)]
    for t, a in moves:
        value += a
        points.append((t, value))
    return points


def balance_chart(s: ScenarioReport, evidence: dict[str, Any]) -> str:
    """For a violation about one user's balance: what the service answered over
    the scenario, the ledger sum the answers imply, and the final values read
    from the database."""
    user = evidence.get("user") or evidence.get("creator")
    if not isinstance(user, str) or not s.ops:
        return ""
    t0 = min(op.time_s for op in s.ops)
    reported = [((t - t0) * 1000, float(b)) for t, b in balance_points(s, user)]
    series = []
    if reported:
        series.append(Series("balance the service answered", "#1f6feb", reported, True, dots=True))
    final_sum = evidence.get("ledger_sum")
    if isinstance(final_sum, int):
        implied = ledger_points(s, user, final_sum)
        if implied:
            series.append(
                Series(
                    "ledger sum (final sum, stepped back through 2xx tips/calls)",
                    "#8250df",
                    [((t - t0) * 1000, float(v)) for t, v in implied],
                    step=True,
                    dashed=True,
                )
            )
    if not series or sum(len(x.points) for x in series) < 2:
        return ""
    markers = []
    if isinstance(evidence.get("balance"), int):
        markers.append(Marker("final balance (database)", "#cf222e", evidence["balance"]))
    if isinstance(final_sum, int):
        markers.append(Marker("final ledger sum (database)", "#8250df", final_sum))
    return line_chart(
        Chart(
            f"{user}: balance and ledger over the scenario",
            "ms since the scenario's first request",
            "tokens",
            series,
            markers,
        )
    )
