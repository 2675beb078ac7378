"""Self-contained HTML for reports and leaderboards: inline CSS, JS and SVG, no network.

The page's script sets ``#vlaeval-status`` to "ok" once it has run (and "error" from
``window.onerror``); with ``#selftest`` in the URL it first clicks every sortable header
and exercises the episode filter, so a headless browser can check the page works.
"""

from __future__ import annotations

import math
import os
import re
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from vlaeval.reports import tables
from vlaeval.reports.repro import protocol_table, repro_table
from vlaeval.reports.svg import Bar, bar_chart, heat_colour

_NAV = re.compile(r'<section id="([^"]+)"><h2>([^<]+)</h2>')  # (id, title) of each section, for the nav bar

if TYPE_CHECKING:
    from vlaeval.reports.leaderboard import Leaderboard
    from vlaeval.reports.report import Report

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232a;background:#fafbfc}
header{background:#1f3b57;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
nav a{color:#cfe3f7;margin-right:14px;text-decoration:none}main{padding:8px 24px 40px}
section{background:#fff;border:1px solid #dde3ea;border-radius:6px;margin:16px 0;padding:8px 16px 16px}
h2{font-size:16px;margin:10px 0}p.note{color:#52606d;font-size:12px;max-width:1100px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #e3e8ee;padding:3px 7px;text-align:left}
th{background:#f0f3f7;position:sticky;top:0}table.sortable th{cursor:pointer;user-select:none}
table.sortable th:after{content:" \\2195";color:#9aa5b1}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.heat{text-align:center;min-width:44px}.status-success{color:#1a7f37}.status-failure{color:#b35900}
.status-error{color:#cf222e;font-weight:600}
.chart text{font-size:11px;fill:#1d232a}.chart .chart-title{font-size:13px;font-weight:600}
.chart .grid{stroke:#e3e8ee}.chart .whisker{stroke:#1d232a;stroke-width:1.2;fill:none}
.controls{margin:6px 0}.controls input,.controls select{font-size:12px;padding:3px 6px;margin-right:8px}
.scroll{max-height:640px;overflow:auto}#vlaeval-status{color:#9aa5b1;font-size:11px;float:right}
code{font-size:12px}video{max-width:320px;display:block}
"""

JS = """
(function () {
  var status = document.getElementById('vlaeval-status');
  function key(text) {
    var t = text.trim().replace(/^\\[/, '');
    var n = parseFloat(t);
    return isNaN(n) ? null : n;
  }
  function sortBy(th) {
    var table = th.closest('table'), body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = th.getAttribute('data-dir') !== 'asc';
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute('data-dir'); });
    th.setAttribute('data-dir', asc ? 'asc' : 'desc');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index] ? a.cells[index].textContent : '', y = b.cells[index] ? b.cells[index].textContent : '';
      var kx = key(x), ky = key(y), r;
      if (kx !== null && ky !== null) { r = kx - ky; }
      else if (kx !== null) { r = -1; } else if (ky !== null) { r = 1; }
      else { r = x.localeCompare(y); }
      return asc ? r : -r;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  var headers = document.querySelectorAll('table.sortable thead th');
  Array.prototype.forEach.call(headers, function (th) {
    th.addEventListener('click', function () { sortBy(th); });
  });
  var filter = document.getElementById('episode-filter'), only = document.getElementById('episode-status');
  function applyFilter() {
    var table = document.getElementById('episode-table');
    if (!table) { return 0; }
    var text = filter ? filter.value.toLowerCase() : '', state = only ? only.value : '', shown = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var ok = row.textContent.toLowerCase().indexOf(text) >= 0 &&
               (!state || row.getAttribute('data-status') === state);
      row.style.display = ok ? '' : 'none';
      if (ok) { shown += 1; }
    });
    var count = document.getElementById('episode-count');
    if (count) { count.textContent = shown + ' shown'; }
    return shown;
  }
  if (filter) { filter.addEventListener('input', applyFilter); }
  if (only) { only.addEventListener('change', applyFilter); }
  applyFilter();
  if (location.hash === '#selftest') {
    Array.prototype.forEach.call(headers, function (th) { sortBy(th); sortBy(th); });
    if (filter) { filter.value = 'zzz-no-match'; applyFilter(); filter.value = ''; applyFilter(); }
  }
  if (status.getAttribute('data-state') !== 'error') {
    status.textContent = 'ok';
    status.setAttribute('data-state', 'ok');
  }
})();
"""

ONERROR = ("window.onerror=function(){var s=document.getElementById('vlaeval-status');"
           "if(s){s.textContent='error';s.setAttribute('data-state','error');}};")


def render_html(report: "Report", link_base: str | Path | None = None) -> str:
    """The report as one HTML file; video links are made relative to ``link_base`` when given."""
    summary = report.summary
    models = list(dict.fromkeys(summary["model"]))
    from vlaeval.reports.report import DEFINITIONS, display_cells, display_metrics

    body = [
        _section("summary", "Summary", _chart(summary, models) + _table(
            display_cells(summary, task_level=False, with_model=report.multi_model)), DEFINITIONS),
        _section("tasks", "Per task", _table(display_cells(summary, task_level=True, with_model=report.multi_model))),
        _section("heatmap", "Per-task success heatmap", _heatmap(report.episodes),
                 "Success rate per task and seed (valid episodes only); mean = mean across seeds."),
    ]
    if not report.metrics.empty:
        body.append(_section("metrics", "Metrics", _table(display_metrics(report.metrics, report.multi_model)),
                             "Numeric per-episode metrics: mean ± seeded bootstrap SE."))
    body += [
        _section("episodes", "Episodes", _episodes(report.episodes, link_base)),
        _section("repro", "Reproducibility", _table(repro_table(report.runs)) + "<h2>Protocol</h2>"
                 + _table(protocol_table(report.runs))),
    ]
    return _page("vlaeval report", body)


def render_leaderboard_html(board: "Leaderboard") -> str:
    from vlaeval.reports.leaderboard import NOTE, citation_table, wide_display

    bars = [(f"{m} ({k})", [Bar("overall", v, se)])
            for m, k, v, se in zip(board.rows["model"], board.rows["kind"], board.rows["overall"],
                                   board.rows["overall_se"]) if math.isfinite(v)]
    body = [_section("leaderboard", "Leaderboard",
                     (bar_chart(bars, ["overall"], "overall success (± SE)") if bars else "")
                     + _table(wide_display(board)), NOTE)]
    if board.citations:
        body.append(_section("sources", "Sources of reported rows", _table(citation_table(board))))
    body.append(_section("repro", "Reproducibility", _table(repro_table(board.runs))))
    return _page("vlaeval leaderboard", body)


def _page(title: str, sections: list[str]) -> str:
    nav = "".join(f'<a href="#{sid}">{label}</a>' for sid, label in _NAV.findall("".join(sections)))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width\"><title>{escape(title)}</title>"
        f"<style>{CSS}</style><script>{ONERROR}</script></head><body>"
        f"<header><span id=\"vlaeval-status\" data-state=\"pending\">pending</span><h1>{escape(title)}</h1>"
        f"<nav>{nav}</nav></header><main>{''.join(sections)}</main><script>{JS}</script></body></html>\n"
    )


def _section(sid: str, title: str, content: str, note: str = "") -> str:
    note_html = f'<p class="note">{escape(note)}</p>' if note else ""
    return f'<section id="{sid}"><h2>{escape(title)}</h2>{note_html}{content}</section>'


def _table(table: pd.DataFrame, table_id: str = "", raw_columns: tuple[str, ...] = ()) -> str:
    """A sortable table; cells are escaped except in ``raw_columns`` (already HTML)."""
    if table.empty:
        return "<p><em>(none)</em></p>"
    numeric = {c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])}
    head = "".join(f"<th>{escape(str(c))}</th>" for c in table.columns)
    rows = []
    for record in table.to_dict(orient="records"):
        cells = "".join(
            f'<td{" class=num" if c in numeric else ""}>'
            f"{record[c] if c in raw_columns else escape(str(record[c]))}</td>"
            for c in table.columns
        )
        rows.append(f"<tr>{cells}</tr>")
    ident = f' id="{table_id}"' if table_id else ""
    return f'<div class="scroll"><table class="sortable"{ident}><thead><tr>{head}</tr></thead>' \
           f'<tbody>{"".join(rows)}</tbody></table></div>'


def _chart(summary: pd.DataFrame, models: list[str]) -> str:
    cells = summary[summary["level"] != "task"]
    groups = [(name, [Bar(r.model, r.mean, r.se) for r in frame.itertuples()])
              for name, frame in cells.groupby("name", sort=False)]
    return bar_chart(groups, models, "success rate (mean across seeds ± SE)")


def _heatmap(episodes: pd.DataFrame) -> str:
    valid = episodes[episodes["valid"]]
    if valid.empty:
        return "<p><em>(no valid episodes)</em></p>"
    rates = valid.groupby(["model", "suite", "task_index", "task_id", "seed"])["success"].mean().unstack("seed")
    seeds = list(rates.columns)
    head = "".join(f"<th>seed {escape(str(s))}</th>" for s in seeds)
    rows = []
    for (model, suite, _, task), values in rates.iterrows():
        mean = float(values.mean())
        cells = "".join(_heat_cell(float(values[s])) for s in seeds) + _heat_cell(mean)
        rows.append(f"<tr><td>{escape(model)}</td><td>{escape(suite)}</td><td>{escape(task)}</td>{cells}</tr>")
    return ('<div class="scroll"><table class="sortable heatmap"><thead><tr><th>model</th><th>suite</th><th>task</th>'
            f'{head}<th>mean</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _heat_cell(p: float) -> str:
    return f'<td class="heat" style="background:{heat_colour(p)}">{tables.pct(p)}</td>'


def _episodes(episodes: pd.DataFrame, link_base: str | Path | None) -> str:
    statuses = "".join(f'<option value="{s}">{s}</option>' for s in ("success", "failure", "error"))
    controls = ('<div class="controls"><input id="episode-filter" type="search" placeholder="filter episodes…">'
                f'<select id="episode-status"><option value="">any status</option>{statuses}</select>'
                '<span id="episode-count"></span></div>')
    rows = []
    for ep in episodes.itertuples():
        metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in sorted((ep.metrics or {}).items()))
        cells = [ep.model, ep.suite, ep.task_id, ep.episode_index, ep.seed, ep.instruction]
        tds = "".join(f"<td>{escape(str(c))}</td>" for c in cells)
        tds += f'<td class="status-{escape(ep.status)}">{escape(ep.status)}</td><td class="num">{ep.steps}</td>'
        tds += f"<td>{escape(metrics)}</td><td>{escape(str(ep.error or ''))}</td><td>{_video(ep.video, link_base)}</td>"
        rows.append(f'<tr data-status="{escape(ep.status)}">{tds}</tr>')
    head = "".join(f"<th>{h}</th>" for h in ("model", "suite", "task", "episode", "seed", "instruction", "status",
                                             "steps", "metrics", "error", "video"))
    return (controls + f'<div class="scroll"><table class="sortable" id="episode-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _video(video: object, link_base: str | Path | None) -> str:
    if not isinstance(video, str) or not video:
        return ""
    href = video
    if link_base is not None:  # relative links keep working when the report moves with its runs
        href = os.path.relpath(Path(video).resolve(), Path(link_base).resolve())
    url = escape(Path(href).as_posix(), quote=True)
    return (f'<a href="{url}">mp4</a><details><summary>play</summary>'
            f'<video controls preload="none" src="{url}"></video></details>')
