"""The frame every HTML report shares: one self-contained file (inline CSS, a
small inline script, inline SVG; nothing fetched), readable without the
script and in print."""

from __future__ import annotations

import html
import re

CSS = """
:root{--fail:#cf222e;--pass:#1a7f37;--error:#9a6700;--muted:#57606a;--line:#d0d7de;
--bg:#f6f8fa;--fg:#1f2328}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
main{max-width:1340px;margin:0 auto;padding:0 24px 48px}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre.wrap{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid var(--line);
border-radius:6px;padding:8px 10px;margin:4px 0}
a{color:#0969da}
.muted{color:var(--muted)}
.num{font-variant-numeric:tabular-nums}
header.verdict{color:#fff;padding:14px 24px;margin:0 0 16px}
header.verdict.fail{background:var(--fail)}header.verdict.pass{background:var(--pass)}
header.verdict.error{background:var(--error)}
header.verdict .inner{max-width:1292px;margin:0 auto;display:flex;gap:20px;align-items:baseline;
flex-wrap:wrap}
header.verdict .word{font-size:34px;font-weight:800;letter-spacing:.04em}
header.verdict .why{font-size:18px;font-weight:600}
header.verdict .meta{width:100%;opacity:.95}
header.verdict code{color:#fff;font-size:13px}
.cards{display:flex;gap:10px;flex-wrap:wrap;margin:0 0 14px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px 14px;
min-width:130px}
.card b{display:block;font-size:24px;line-height:1.2}
.card.fail b{color:var(--fail)}.card.pass b{color:var(--pass)}.card.error b{color:var(--error)}
.summary-grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.6fr);gap:16px;
align-items:start}
h2{font-size:18px;margin:0 0 8px}h3{font-size:15px;margin:14px 0 6px}
h4{font-size:14px;margin:0 0 4px}h5{font-size:13px;margin:8px 0 4px;color:var(--muted)}
table{border-collapse:collapse;background:#fff}
table.data,table.list{width:100%;font-size:13px}
th,td{border:1px solid var(--line);padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
td{overflow-wrap:break-word}
table.scenarios td:nth-child(2),table.by-invariant td:first-child{white-space:nowrap}
table.list tr.st-pass td{color:var(--muted);padding-top:1px;padding-bottom:1px}
.table-box{max-width:100%;overflow-x:auto}
table.data{width:auto;min-width:50%}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:700;
color:#fff;text-transform:uppercase;letter-spacing:.03em;white-space:nowrap}
.badge.fail{background:var(--fail)}.badge.pass{background:var(--pass)}
.badge.error{background:var(--error)}.badge.unknown{background:var(--error)}
.badge.valid{background:var(--pass)}.badge.invalid{background:var(--fail)}
section.scenario,details.scenario{background:#fff;border:1px solid var(--line);border-radius:8px;
margin:14px 0;padding:14px 16px}
section.scenario.st-fail{border-left:6px solid var(--fail)}
section.scenario.st-error{border-left:6px solid var(--error)}
details.scenario{padding:4px 16px;margin:6px 0}
details.scenario>summary{cursor:pointer;padding:2px 0}
details.scenario[open]>summary{margin-bottom:8px}
.passed{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:0 14px;
font-size:13px;margin:4px 0}
.up{font-size:12px;font-weight:400;margin-left:8px}
.doc{margin:4px 0 10px;max-width:110ch}
.violation{border:1px solid #f5c2c7;background:#fff8f8;border-radius:6px;padding:10px 12px;
margin:8px 0}
.violation .msg{font-weight:600;margin:0 0 6px}
.ev-grid{display:grid;grid-template-columns:minmax(340px,1fr) minmax(0,600px);gap:16px;
align-items:start}
dl.kv{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:2px 12px;margin:4px 0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;overflow-wrap:break-word;min-width:0}
.cmd{display:flex;gap:8px;align-items:flex-start;background:#fff;border:1px solid var(--line);
border-radius:6px;padding:6px 8px;margin:6px 0}
.cmd .label{color:var(--muted);white-space:nowrap}
.cmd code{flex:1;white-space:pre-wrap;overflow-wrap:anywhere}
button.copy{font:12px system-ui,sans-serif;padding:2px 10px;border:1px solid var(--line);
border-radius:6px;background:#f3f4f6;cursor:pointer}
.legend{font-size:12.5px;color:var(--muted);margin:4px 0;display:flex;flex-wrap:wrap;gap:4px 14px;
align-items:center}
.legend .key{display:inline-flex;align-items:center;gap:5px;color:var(--fg)}
.legend i{display:inline-block;width:20px;border-top:3px solid}
.legend i.dashed{border-top-style:dashed}.legend i.dotted{border-top-style:dotted}
.timeline-box svg,.chart-box svg{max-width:100%;height:auto;display:block}
svg text{font-family:system-ui,sans-serif}
svg .tick{font-size:11px;fill:var(--muted)}svg .axis-label{font-size:11.5px;fill:var(--muted)}
svg .lane-label{font-size:11px;fill:var(--muted)}
svg .lane{fill:#f6f8fa}svg .grid{stroke:#e1e4e8;stroke-width:1}
svg .frame{fill:none;stroke:var(--line)}
.o-ok rect,rect.o-ok{fill:#2da44e}.o-fail rect,rect.o-fail{fill:#8c959f}
.o-info rect,rect.o-info{fill:#e16f24}
.o-open rect,rect.o-open{fill:#fff;stroke:#cf222e;stroke-dasharray:3 2}
g.op.marked rect,rect.marked{stroke:#000;stroke-width:2.5}
g.op:hover rect,g.op.hot rect{stroke:#0969da;stroke-width:3}
g.op{cursor:default}
svg .op-label{font-size:10px;fill:#fff;pointer-events:none}
tr.o-ok td:first-child{box-shadow:inset 4px 0 #2da44e}
tr.o-fail td:first-child{box-shadow:inset 4px 0 #8c959f}
tr.o-info td:first-child{box-shadow:inset 4px 0 #e16f24}
tr.hot td,dl.hot{background:#ddf4ff}
dl.op-card{border-left:4px solid #8c959f;padding-left:8px}
dl.op-card.o-ok{border-color:#2da44e}dl.op-card.o-info{border-color:#e16f24}
td.num,th{white-space:nowrap}
figure.chart-box{margin:0;background:#fff;border:1px solid var(--line);border-radius:6px;
padding:6px 8px}
figure.chart-box figcaption{font-weight:600;font-size:13px}
.charts{display:flex;gap:14px;flex-wrap:wrap}
#tip{position:fixed;z-index:10;max-width:560px;background:#1f2328;color:#fff;border-radius:6px;
padding:8px 10px;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;pointer-events:none;
box-shadow:0 4px 14px rgba(0,0,0,.3)}
#tip b{font-size:13px}#tip .k{color:#9ecbff}#tip pre{margin:4px 0 0;white-space:pre-wrap;
overflow-wrap:anywhere;max-height:260px;overflow:hidden}
#tip[hidden]{display:none}
@media print{
 body{background:#fff}main{max-width:none;padding:0}
 header.verdict,.badge,.o-ok rect,.o-fail rect,.o-info rect{print-color-adjust:exact;
 -webkit-print-color-adjust:exact}
 button.copy,#tip,.up{display:none}
 details::details-content{content-visibility:visible;display:contents}
 .summary-grid,.ev-grid{grid-template-columns:minmax(0,1fr)}
 g.op{break-inside:avoid}
}
"""

SCRIPT = r"""
(function(){
  var tip = document.getElementById('tip');
  // The rich tooltip replaces the SVG titles (kept for readers without script).
  document.querySelectorAll('svg.timeline g.op > title').forEach(function(t){ t.remove(); });
  function add(parent, tag, text, cls){
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text !== undefined) el.textContent = text;
    parent.appendChild(el); return el;
  }
  function show(g, ev){
    var d = JSON.parse(g.getAttribute('data-op'));
    tip.textContent = '';
    var head = add(tip, 'div');
    add(head, 'b', d.f);
    head.appendChild(document.createTextNode(
      (d.user ? ' by ' + d.user : '') + '  \u2192  ' +
      (d.status === null ? '' : d.status + ' ') + d.outcome));
    add(tip, 'div', 'worker ' + d.worker + ' \u00b7 call #' + d.process + ' \u00b7 ' + d.start_ms +
      ' \u2192 ' + (d.end_ms === null ? 'never answered' :
      d.end_ms + ' ms (' + (d.end_ms - d.start_ms).toFixed(1) + ' ms)'));
    var args = Object.keys(d.args || {});
    if (args.length) {
      var a = add(tip, 'div');
      add(a, 'span', 'args ', 'k');
      a.appendChild(document.createTextNode(args.map(function(k){
        return k + '=' + JSON.stringify(d.args[k]); }).join('  ')));
    }
    if (d.body !== null && d.body !== undefined) {
      add(tip, 'span', 'answer', 'k');
      add(tip, 'pre', typeof d.body === 'string' ? d.body : JSON.stringify(d.body, null, 1));
    }
    if (d.error) { add(tip, 'span', 'error', 'k'); add(tip, 'pre', d.error); }
    tip.hidden = false;
    place(ev);
  }
  function place(ev){
    var x = ev.clientX + 14, y = ev.clientY + 14, r = tip.getBoundingClientRect();
    if (x + r.width > window.innerWidth - 8) x = Math.max(8, ev.clientX - r.width - 14);
    if (y + r.height > window.innerHeight - 8) y = Math.max(8, ev.clientY - r.height - 14);
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  }
  function hot(scope, process, on){
    if (!scope) return;
    scope.querySelectorAll('[data-process="' + process + '"]').forEach(function(el){
      el.classList.toggle('hot', on); });
  }
  var current = null;
  document.addEventListener('mouseover', function(ev){
    var t = ev.target.closest &&
      ev.target.closest('g.op, tr[data-process], dl[data-process]');
    if (t === current) return;
    if (current) { hot(current.closest('.scenario'), current.getAttribute('data-process'), false); }
    current = t;
    if (!t) { tip.hidden = true; return; }
    hot(t.closest('.scenario'), t.getAttribute('data-process'), true);
    if (t.matches('g.op')) show(t, ev); else tip.hidden = true;
  });
  document.addEventListener('mousemove', function(ev){ if (!tip.hidden) place(ev); });
  document.querySelectorAll('button.copy').forEach(function(b){
    b.addEventListener('click', function(){
      var text = b.getAttribute('data-copy');
      function done(){
        b.textContent = 'copied';
        setTimeout(function(){ b.textContent = 'copy'; }, 1500);
      }
      function fallback(){
        var area = document.createElement('textarea'); area.value = text;
        document.body.appendChild(area); area.select();
        try { document.execCommand('copy'); done(); } catch (e) {}
        area.remove();
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, fallback);
      } else { fallback(); }
    });
  });
  function openTarget(){
    var el = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (el && el.tagName === 'DETAILS') el.open = true;
  }
  window.addEventListener('hashchange', openTarget); openTarget();
  window.addEventListener('beforeprint', function(){
    document.querySelectorAll('details').forEach(function(d){ d.open = true; }); });
})();
"""


def anchor(text: str) -> str:
    return "s-" + re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def badge(status: str, text: str | None = None) -> str:
    return f'<span class="badge {html.escape(status)}">{html.escape(text or status)}</span>'


def command(label: str, line: str) -> str:
    """A shell line, wrapped (never scrolled), with a copy button."""
    quoted = html.escape(line, quote=True)
    return (
        f'<div class="cmd"><span class="label">{html.escape(label)}</span>'
        f'<code>{html.escape(line)}</code><button class="copy" type="button" '
        f'data-copy="{quoted}" title="copy to the clipboard">copy</button></div>'
    )


def document(title: str, verdict: str, header: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f'<body id="top"><header class="verdict {html.escape(verdict)}">'
        f'<div class="inner">{header}</div></header><main>{body}</main>'
        f"<div id=tip hidden></div><script>{SCRIPT}</script></body></html>\n"
    )
