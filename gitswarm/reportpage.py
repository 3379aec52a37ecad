"""The page of `gitswarm report`: one self-contained HTML file (inline CSS, inline SVG, a small inline
script; a Content-Security-Policy that allows no fetch of anything) from a report.Report.

Every text on the page that came from the board or main (titles, summaries, reasons, worker and
goal names, subjects) goes through `esc`: a title `<script>` shows as text."""

from __future__ import annotations

import contextlib
import html
import re
import time
from pathlib import Path
from typing import Iterable

from .errors import GitswarmError
from .report import Attempt, Report
from .text import usd

COLOURS = {"done": "#2e9d4f", "landing": "#8fc9a0", "held": "#4a7bd0", "failed": "#d0413a", "returned": "#e0a030",
           "released": "#b0b0b0", "lost": "#8a5a9e", "cancelled": "#707070"}
WIDTH, ROW, LEFT = 960, 22, 130  # the SVG's width, a worker's row, the room for names
CHART_H = 120
MAX_POINTS = 2000  # points of a chart's line, at most

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;
vertical-align:top}th{background:#f4f4f4}tr:target{background:#fff3b0}code{font-size:.92em}
.reason{white-space:pre-wrap;max-width:60em;font-family:monospace;font-size:.9em}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:.9em;height:.9em;
margin-right:.3em;vertical-align:middle}svg text{font:11px sans-serif}
"""

SCRIPT = """
(function(){
  var rows = document.querySelectorAll('tr.task');
  var missing = [];
  document.querySelectorAll('a.bar').forEach(function(a){
    var id = a.getAttribute('href').slice(1);
    if (!document.getElementById(id)) missing.push(id);
    function mark(style){ return function(){ var r = document.getElementById(id); if (r) r.style.outline = style; }; }
    a.addEventListener('mouseenter', mark('2px solid #333'));
    a.addEventListener('mouseleave', mark(''));
  });
  document.body.setAttribute('data-tasks-rendered', String(rows.length));
  document.body.setAttribute('data-bars-unlinked', String(missing.length));
  document.body.setAttribute('data-check', missing.length ? 'bars without a task row: ' + missing.join(' ') : 'ok');
})();
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def when(at: float | None) -> str:
    return "" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + "Z"


def write(report: Report, output: Path, commit_url: str | None = None) -> None:
    """Render the page and write it to `output` (through a temporary file beside it, renamed)."""
    if commit_url is not None and (not re.match(r"https?://", commit_url) or "{sha}" not in commit_url):
        raise GitswarmError(f"--commit-url {commit_url!r} is not an http(s) address with {{sha}} in it",
                            "give e.g. https://forge.example/org/repo/commit/{sha}")
    page = render(report, commit_url)
    part = output.with_name(f".{output.name}.tmp")
    try:
        part.write_text(page, encoding="utf-8")
        part.replace(output)
    except OSError as e:
        with contextlib.suppress(OSError):
            part.unlink()
        raise GitswarmError(f"cannot write {output}: {e.strerror or e}",
                            "give -o a file in a folder that exists and that you can write") from None


def render(report: Report, commit_url: str | None = None) -> str:
    """The whole page. `commit_url`: a template with `{sha}` (a forge's commit page) for the links
    from tasks to their commits; without it they point at the page's own list of main's commits."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
             "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
             f"<title>gitswarm report: {esc(report.remote)}</title><style>{CSS}</style></head><body>",
             f"<h1>gitswarm run: {esc(report.remote)}</h1>",
             f"<p>{esc(report.summary())}. Board at <code>{esc(report.tip[:12])}</code>.</p>"]
    parts += summary(report)
    parts += timeline(report)
    parts += charts(report)
    parts += verdicts(report)
    parts += failures(report)
    parts += task_table(report, commit_url)
    parts += commits(report, commit_url)
    if report.problems:
        parts += (["<h2>Unreadable board files and run records (skipped)</h2><ul>"]
                  + [f"<li>{esc(p)}</li>" for p in report.problems] + ["</ul>"])
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _table(head: Iterable[str], rows: Iterable[Iterable[str]], attrs: str = "") -> list[str]:
    """A table whose cells are already HTML (escaped by the caller)."""
    out = [f"<table{attrs}><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    return out + ["</table>"]


def summary(report: Report) -> list[str]:
    spend = report.tokens_by_goal()
    goals = []
    for r in report.records:
        mine = spend.get(r.name, {})
        goals.append((esc(r.name), esc(r.status), esc(r.cycle), esc(len(r.verdicts)), esc(mine.get("goal", 0)),
                      esc(mine.get("tasks", 0)), esc(mine.get("total", 0)), esc(r.budget or ""), _usd(mine.get("cost")),
                      f"<span class=reason>{esc(r.reason)}</span>"))
    out = ["<h2 id='summary'>Run</h2>"]
    out += _table(("goal", "status", "cycle", "verdicts", "planner+judge tokens", "task tokens", "total", "budget",
                   "cost", "reason"), goals) if goals else ["<p>No goal records on the board.</p>"]
    out += _table(report.by_status().keys(), [[esc(n) for n in report.by_status().values()]], " id='states'")
    out += ["<p>Tokens by role:</p>"] + _table(report.tokens_by_role().keys(),
                                               [[esc(n) for n in report.tokens_by_role().values()]], " id='roles'")
    costs = report.cost_by_role()
    if any(c is not None for c in costs.values()):
        out += ["<p>Cost by role (USD):</p>"] + _table(costs.keys(), [[_usd(c) for c in costs.values()]], " id='costs'")
    return out


def _usd(cost: float | None) -> str:
    """A cost cell: $1.23, $0.0123, or an em dash when unknown."""
    return "\u2014" if cost is None else esc(usd(cost))


def _span(report: Report) -> tuple[float, float]:
    times = [a.start for a in report.attempts] + [a.end for a in report.attempts if a.end]
    times += [t for t, _ in report.queue]
    if not times:
        return 0.0, 1.0
    return min(times), max(max(times), min(times) + 1.0)


def _x(at: float, span: tuple[float, float]) -> float:
    return LEFT + (WIDTH - LEFT - 10) * (at - span[0]) / (span[1] - span[0])


def timeline(report: Report) -> list[str]:
    span, workers = _span(report), report.workers()
    out = ["<h2 id='timeline'>Timeline per worker</h2><p class=legend>"]
    out += [f"<span><i style='background:{c}'></i>{esc(k)}</span>" for k, c in COLOURS.items()]
    out.append(f"</p><p>From {esc(when(span[0]))} to {esc(when(span[1]))}: each bar is one claim, from the claim "
               "to the commit that ended it (a lighter tail: waiting in the landing queue); it links to its task.</p>")
    height = ROW * len(workers) + 24
    out.append(f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' role='img'>")
    for i, worker in enumerate(workers):
        y = i * ROW + 4
        out.append(f"<text x='4' y='{y + 14}'>{esc(worker[:20])}</text>")
        for a in (a for a in report.attempts if a.worker == worker):
            out.append(_bar(a, y, span))
    out.append(f"<text x='{LEFT}' y='{height - 4}'>{esc(when(span[0]))}</text>"
               f"<text x='{WIDTH - 10}' y='{height - 4}' text-anchor='end'>{esc(when(span[1]))}</text></svg>")
    return out


def _bar(a: Attempt, y: int, span: tuple[float, float]) -> str:
    end = a.end if a.end is not None else span[1]
    x0, x1 = _x(a.start, span), max(_x(end, span), _x(a.start, span) + 2)
    tip = f"{a.task} attempt {a.token} by {a.worker}: {a.outcome}, {when(a.start)} to {when(a.end) or 'now'}"
    if a.runs and a.runs > 1:
        tip += f"; {a.runs} runs: rebased onto a moved main and run again {a.runs - 1} time(s)"
    if a.reason:
        tip += f"\n{a.reason[:500]}"
    shapes = []
    if a.handed is not None:
        xh = max(_x(a.handed, span), x0 + 1)
        shapes.append(f"<rect x='{x0:.1f}' y='{y}' width='{xh - x0:.1f}' height='{ROW - 6}' fill='{COLOURS['held']}'/>")
        shapes.append(f"<rect x='{xh:.1f}' y='{y}' width='{max(x1 - xh, 1):.1f}' height='{ROW - 6}' "
                      f"fill='{COLOURS.get(a.outcome, '#999')}' opacity='0.75'/>")
    else:
        shapes.append(f"<rect x='{x0:.1f}' y='{y}' width='{x1 - x0:.1f}' height='{ROW - 6}' "
                      f"fill='{COLOURS.get(a.outcome, '#999')}'/>")
    return (f"<a class='bar' href='#task-{esc(a.task)}' data-outcome='{esc(a.outcome)}' "
            f"data-runs='{esc(a.runs)}'><title>{esc(tip)}</title>"
            + "".join(shapes) + "</a>")


def _line(points: list[tuple[float, int]], span: tuple[float, float], colour: str, top: int) -> str:
    if not points:
        return ""
    if len(points) > MAX_POINTS:  # a long run: every n-th point, and the last
        points = points[:: len(points) // MAX_POINTS + 1] + points[-1:]
    most = max(n for _, n in points) or 1
    xy, last = [], 0
    for at, n in points:  # a step line: the value holds until the next point
        x = _x(at, span)
        xy += [f"{x:.1f},{top + CHART_H * (1 - last / most):.1f}", f"{x:.1f},{top + CHART_H * (1 - n / most):.1f}"]
        last = n
    xy.append(f"{_x(span[1], span):.1f},{top + CHART_H * (1 - last / most):.1f}")
    return (f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{' '.join(xy)}'/>"
            f"<text x='4' y='{top + 10}'>max {esc(most)}</text>")


def charts(report: Report) -> list[str]:
    span = _span(report)
    out = ["<h2 id='throughput'>Throughput and queue</h2>",
           "<p><span style='color:#2e9d4f'>tasks done so far</span>; "
           "<span style='color:#4a7bd0'>queue: open and landing tasks</span>, after each board commit.</p>"]
    for label, points, colour in (("done", report.throughput, "#2e9d4f"), ("queue", report.queue, "#4a7bd0")):
        out.append(f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{CHART_H + 10}' "
                   f"data-chart='{label}' role='img'><line x1='{LEFT}' y1='{CHART_H + 5}' x2='{WIDTH - 10}' "
                   f"y2='{CHART_H + 5}' stroke='#ccc'/>{_line(points, span, colour, 5)}</svg>")
    return out


def verdicts(report: Report) -> list[str]:
    rows = [(esc(r.name), esc(v.cycle), esc(v.decision), esc(when_text(v.at)), esc(v.tokens),
             f"<div class=reason>{esc(v.reasons)}</div>") for r in report.records for v in r.verdicts]
    return ["<h2 id='verdicts'>The judge's verdicts</h2>"] + (
        _table(("goal", "cycle", "decision", "at", "tokens", "reasons"), rows) if rows else ["<p>No verdicts.</p>"])


def when_text(stamp: str) -> str:
    return stamp.replace("T", " ")[:19] + "Z" if stamp else ""


def failures(report: Report) -> list[str]:
    failed = [a for a in report.attempts if a.outcome in ("failed", "returned", "lost")]
    rows = [(f"<a href='#task-{esc(a.task)}'>{esc(a.task)}</a>", esc(a.token), esc(a.worker), esc(a.outcome),
             esc(when(a.end)), f"<div class=reason>{esc(a.reason)}</div>") for a in failed]
    ended = [t for t in report.tasks if t.status in ("failed", "dead", "cancelled")]
    last = [(f"<a href='#task-{esc(t.id)}'>{esc(t.id)}</a>", esc(t.title), esc(t.status), esc(t.attempts),
             f"<div class=reason>{esc((t.result or {}).get('reason'))}</div>") for t in ended]
    out = ["<h2 id='failures'>Failures</h2>"]
    out += (_table(("task", "attempt", "worker", "outcome", "at", "why"), rows) if rows
            else ["<p>No failed attempt.</p>"])
    out += ["<p>Tasks that ended without landing, with their last error:</p>"] + (
        _table(("task", "title", "status", "attempts", "last error"), last, " id='dead'") if last else ["<p>None.</p>"])
    return out


def _commit_link(sha: str, commit_url: str | None) -> str:
    href = commit_url.replace("{sha}", sha) if commit_url else f"#commit-{sha}"
    return f"<a href='{esc(href)}'><code>{esc(sha[:12])}</code></a>"


def task_table(report: Report, commit_url: str | None) -> list[str]:
    rows = []
    for t in report.tasks:
        result, landed = t.result or {}, report.landed.get(t.id)
        sha = landed.commit if landed else result.get("commit")
        mine = [a for a in report.attempts if a.task == t.id]
        reruns = sum(max((a.runs or 0) - 1, 0) for a in mine)
        board = report.board_commits.get(t.id, [])
        rows.append(f"<tr class='task' id='task-{esc(t.id)}' data-status='{esc(t.status)}'>"
                    f"<td><code>{esc(t.id)}</code></td><td>{esc(t.title)}</td><td>{esc(t.kind)}</td>"
                    f"<td>{esc(t.goal)}</td><td>{esc(t.status)}</td><td>{esc(t.attempts)}</td><td>{esc(reruns)}</td>"
                    f"<td>{esc(result.get('worker'))}</td><td>{esc(result.get('tokens', ''))}</td>"
                    f"<td>{_commit_link(sha, commit_url) if sha else ''}</td>"
                    f"<td><div class=reason>{esc(result.get('summary') or result.get('reason'))}</div></td>"
                    f"<td>{' '.join(f'<code>{esc(c[:8])}</code>' for c in board[-8:])}</td></tr>")
    head = ("id", "title", "kind", "goal", "status", "attempts", "rebases", "worker", "tokens", "commit",
            "summary or reason", "board commits (last 8)")
    return (["<h2 id='tasks'>Tasks</h2><table id='task-table'><tr>"] + [f"<th>{esc(h)}</th>" for h in head]
            + ["</tr>"] + rows + ["</table>"])


def commits(report: Report, commit_url: str | None) -> list[str]:
    rows = sorted(report.landed.items(), key=lambda item: item[1].at)
    out = ["<h2 id='main'>Commits on main that landed tasks</h2>"]
    if not rows:
        return out + ["<p>None.</p>"]
    out.append("<table><tr><th>commit</th><th>task</th><th>subject</th><th>worker</th><th>model</th>"
               "<th>tokens</th><th>tested</th><th>at</th></tr>")
    seen: set[str] = set()
    for task_id, c in rows:
        anchor = "" if c.commit in seen else f" id='commit-{esc(c.commit)}'"
        seen.add(c.commit)
        link = f"<a href='{esc(commit_url.replace('{sha}', c.commit))}'>" if commit_url else ""
        out.append(f"<tr{anchor}><td>{link}<code>{esc(c.commit[:12])}</code>{'</a>' if link else ''}"
                   f"</td><td><a href='#task-{esc(task_id)}'>{esc(task_id)}</a></td><td>{esc(c.subject)}</td>"
                   f"<td>{esc(c.worker)}</td><td>{esc(c.model)}</td><td>{esc(c.tokens)}</td><td>{esc(c.tested)}</td>"
                   f"<td>{esc(when(c.at))}</td></tr>")
    return out + ["</table>"]
