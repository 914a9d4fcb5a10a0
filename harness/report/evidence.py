"""A violation's evidence as data a person reads: scalars as a definition list,
rows and ops as tables, Stripe objects as nested lists; text blocks wrapped."""

from __future__ import annotations

import html
import json
from typing import Any

MAX_ROWS = 200
ROWS_OPEN = 8  # longer tables show this many, the rest folded
CELL_CHARS = 240
OP_COLUMNS = ("process", "worker", "f", "user", "args", "type", "status", "body", "time_s")


def _label(key: str) -> str:
    return key.replace("_", " ")


def _is_op(value: Any) -> bool:
    return isinstance(value, dict) and {"process", "type", "f"} <= value.keys()


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _compact(value: Any) -> str:
    """A short inline form of a nested value (args, an answer body)."""
    if isinstance(value, dict) and all(_is_scalar(v) for v in value.values()):
        text = ", ".join(f"{k}={v}" for k, v in value.items())
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    if len(text) > CELL_CHARS:
        return (
            f'<span title="{html.escape(text)}">{html.escape(text[:CELL_CHARS])}'
            f'<span class="muted">... ({len(text) - CELL_CHARS} more)</span></span>'
        )
    return html.escape(text)


def _scalar(value: Any) -> str:
    if value is None:
        return '<span class="muted">none</span>'
    if _long_text(value):
        return f'<pre class="wrap">{html.escape(value)}</pre>'
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<span class="num">{value}</span>'
    return f"<code>{html.escape(str(value))}</code>"


def _cell(value: Any) -> str:
    if _is_scalar(value):
        if isinstance(value, str) and "\n" in value:
            return f'<pre class="wrap">{html.escape(value)}</pre>'
        return _scalar(value) if value is None else html.escape(str(value))
    return _compact(value)


def _row(r: dict[str, Any], columns: list[str], ops: bool, t0: float) -> str:
    """One table row; an op's row carries its outcome and process for highlighting."""
    attrs = ""
    if ops:
        attrs = f' class="o-{html.escape(str(r.get("type")))}" data-process="{r.get("process")}"'
    cells = []
    for c in columns:
        value = r.get(c)
        if ops and c == "time_s" and isinstance(value, int | float):
            cells.append(f'<td class="num">{(value - t0) * 1000:,.1f} ms</td>')
        else:
            cells.append(f"<td>{_cell(value)}</td>")
    return f"<tr{attrs}>{''.join(cells)}</tr>"


def _table(rows: list[dict[str, Any]], ops: bool, t0: float) -> str:
    columns: list[str] = []
    if ops:
        columns = [c for c in OP_COLUMNS if any(c in r for r in rows)]
    for r in rows:
        columns.extend(k for k in r if k not in columns and not (ops and k in ("index", "error")))
    labels = {"time_s": "at", "f": "call", "type": "outcome"} if ops else {}
    if ops and any(r.get("error") for r in rows):
        columns.append("error")
    head = "".join(f"<th>{html.escape(labels.get(c) or _label(c))}</th>" for c in columns)
    body = [_row(r, columns, ops, t0) for r in rows[:MAX_ROWS]]

    def table(part: list[str]) -> str:
        return (
            f'<div class="table-box"><table class="data"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(part)}</tbody></table></div>"
        )

    shown = table(body)
    if len(body) > ROWS_OPEN + 2:
        shown = table(body[:ROWS_OPEN]) + (
            f"<details><summary>{len(body) - ROWS_OPEN} more rows</summary>"
            f"{table(body[ROWS_OPEN:])}</details>"
        )
    if len(rows) > MAX_ROWS:
        shown += f'<p class="muted">{len(rows) - MAX_ROWS} more rows in report.json</p>'
    if ops:
        shown += (
            '<p class="muted">time: ms since the scenario\'s first request, as on the timeline, '
            "where these calls are outlined; hover a row to find its bar.</p>"
        )
    return shown


OUTCOME = {"ok": "ok", "fail": "refused", "info": "unknown", "invoke": "sent, no answer"}


def _op_card(op: dict[str, Any], depth: int, t0: float) -> str:
    """One call: what was sent and what came back, the answer laid out in full."""
    status = op.get("status")
    outcome = OUTCOME.get(str(op.get("type")), str(op.get("type")))
    fields = {
        "call": f"{op.get('f')} by {op.get('user')} (worker {op.get('worker')}, "
        f"call #{op.get('process')})",
        "sent": op.get("args") or {},
        "answer": f"{status} {outcome}" if status is not None else outcome,
    }
    if isinstance(op.get("time_s"), int | float):
        fields["at"] = f"{(op['time_s'] - t0) * 1000:,.1f} ms (on the timeline, outlined)"
    if op.get("body") is not None:
        fields["body"] = op["body"]
    if op.get("error"):
        fields["error"] = op["error"]
    rows = "".join(
        f"<dt>{html.escape(k)}</dt><dd>"
        + (
            html.escape(v)
            if isinstance(v, str) and k != "error"
            else render_value(v, depth + 1, t0)
        )
        + "</dd>"
        for k, v in fields.items()
    )
    kind = html.escape(str(op.get("type")))
    return f'<dl class="kv op-card o-{kind}" data-process="{op.get("process")}">{rows}</dl>'


def render_value(value: Any, depth: int = 0, t0: float = 0.0) -> str:
    if _is_op(value):
        return _op_card(value, depth, t0)
    if isinstance(value, dict):
        return _dl(value, depth, t0)
    if isinstance(value, list | tuple):
        items = list(value)
        if not items:
            return '<span class="muted">none</span>'
        if all(isinstance(i, dict) for i in items):
            return _table(items, all(_is_op(i) for i in items), t0)
        if all(_is_scalar(i) for i in items):
            shown = ", ".join(f"<code>{html.escape(str(i))}</code>" for i in items[:MAX_ROWS])
            rest = f" and {len(items) - MAX_ROWS} more" if len(items) > MAX_ROWS else ""
            return shown + rest
        return (
            "<ol>" + "".join(f"<li>{render_value(i, depth + 1, t0)}</li>" for i in items) + "</ol>"
        )
    return _scalar(value)


def _dl(value: dict[str, Any], depth: int, t0: float) -> str:
    if depth >= 3:
        return f"<code>{_compact(value)}</code>"
    items = "".join(
        f"<dt>{html.escape(_label(str(k)))}</dt><dd>{render_value(v, depth + 1, t0)}</dd>"
        for k, v in value.items()
    )
    return f'<dl class="kv">{items}</dl>'


def _holds_ops(value: Any) -> bool:
    if _is_op(value):
        return True
    return isinstance(value, list | tuple) and bool(value) and all(_is_op(i) for i in value)


def render_evidence(evidence: dict[str, Any], t0: float = 0.0, aside: str = "") -> str:
    """Scalars first (who, how much), then each structured item under its name;
    `aside` (a plot) goes beside them, and the calls, wide, below.
    `t0`: the scenario's first request, so op times read as on its timeline."""
    simple = {k: v for k, v in evidence.items() if _is_scalar(v) and not _long_text(v)}
    narrow = [_dl(simple, 0, t0)] if simple else []
    wide: list[str] = []
    for key, value in evidence.items():
        if key in simple:
            continue
        count = f" ({len(value)})" if isinstance(value, list | tuple) and len(value) > 1 else ""
        item = (
            f'<div class="ev-item"><h5>{html.escape(_label(key))}{count}</h5>'
            f"{render_value(value, 1, t0)}</div>"
        )
        (wide if _holds_ops(value) else narrow).append(item)
    top = "".join(narrow)
    if aside:
        top = f'<div class="ev-grid"><div>{top}</div><div>{aside}</div></div>'
    return f'<div class="evidence">{top}{"".join(wide)}</div>'


def as_rows(evidences: list[dict[str, Any]], messages: list[str]) -> list[dict[str, Any]] | None:
    """Many violations of one invariant with flat evidence (scalars, or one call
    plus scalars) as the rows of one table; None when they do not flatten."""
    keys = [tuple(e) for e in evidences]
    if len(set(keys)) != 1:
        return None
    ops = [k for k in keys[0] if all(_is_op(e[k]) for e in evidences)]
    rest = [k for k in keys[0] if k not in ops]
    flat = all(_is_scalar(e[k]) or isinstance(e[k], list) for e in evidences for k in rest)
    if len(ops) > 1 or not flat:
        return None
    if ops:
        return [{**e[ops[0]], **{k: e[k] for k in rest}} for e in evidences]
    return [{"message": m, **e} for m, e in zip(messages, evidences, strict=True)]


def rows_table(rows: list[dict[str, Any]], t0: float = 0.0) -> str:
    return _table(rows, all(_is_op(r) for r in rows), t0)


def _long_text(value: Any) -> bool:
    return isinstance(value, str) and ("\n" in value or len(value) > 160)


__all__ = ["as_rows", "render_evidence", "render_value", "rows_table"]
