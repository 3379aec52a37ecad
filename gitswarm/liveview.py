"""The live view of `serve` and `worker` on a terminal: per goal its tasks by state, the tokens it
spent, its cycle and what it waits for; a line per agent with its task and how long it has held
it; the landing queue; the last landings and failures. Log lines scroll above it.

It draws (rich's Live, about once a second, in a thread of its own) from what the process already
has: the board as its agents last fetched it and the pool's agent names, and for `serve` the
daemon's goal clocks. It never fetches, never takes a lock an agent waits on, and a failure in it
never stops the swarm: after FAILURES_TO_GIVE_UP failed frames in a row it stops, and the log goes
back to plain lines, saying why (logs.fall_back_to_lines). Everything shown that an agent or a
pusher wrote (titles, reasons) is made one printable line and given to rich as text, never markup.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import Counter
from typing import Any, Callable, Iterable

from . import logs
from . import task as T
from .queuestatus import ago
from .record import spent, spent_cost
from .statuses import STATUSES
from .statusview import board_time, dollars, waits_for
from .statusview import one_line as first_line

EVERY = 1.0  # seconds between frames
FAILURES_TO_GIVE_UP = 3
AGENTS_SHOWN = 24
GOALS_SHOWN = 8
RECENT = 5
TITLE_MAX = 60


def one_line(text: Any, limit: int = TITLE_MAX) -> str:
    return first_line(text, limit)


def _counts(tasks: list[T.Task]) -> str:
    counts = Counter(t.status for t in tasks)
    return "  ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s])


def _stamp(t: T.Task) -> str:
    return str((t.result or {}).get("at", ""))


def train_line(train: Any) -> str | None:
    """What the landing train of this process does: whether it holds the hub's train lease, the
    batches in test, the last result; None without a train here."""
    if train is None:
        return None
    if train.lease_ref.tip is None:
        return "train: not holding the lease (another process runs it, or not yet started)"
    said = [f"#{b.number} ({len(b.tasks)} task(s))" for b in list(train.inflight)]
    doing = f"testing {', '.join(said)}" if said else "idle"
    if train.red_main is not None:
        doing = f"main at {train.red_main[:10]} fails the test by itself: waiting for main to move"
    return f"train: {doing}" + (f"; {one_line(train.last, 120)}" if train.last else "")


def frame(title: str, agents: Iterable[str], tasks: list[T.Task], records: dict[str, Any],
          clocks: dict[str, Any] | None, started: float, now: float, train: str | None = None) -> Any:
    """One frame, from a snapshot of the board: a pure function of what it is given."""
    from rich.console import Group
    from rich.rule import Rule
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Rule(style="dim"),
                        Text.assemble((f"gitswarm {one_line(title, 100)}", "bold"), f"  up {ago(now - started)}")]
    goals = Table.grid(padding=(0, 2))
    by_goal: dict[str | None, list[T.Task]] = {}
    for t in tasks:  # one pass: a board may hold 100,000 tasks
        by_goal.setdefault(t.goal, []).append(t)
    shown = [(n, r) for n, r in records.items() if r.status == "active"]  # the active first, then the last ended
    shown += sorted(((n, r) for n, r in records.items() if r.status != "active"), key=lambda nr: nr[1].updated,
                    reverse=True)
    for name, rec in shown[:GOALS_SHOWN]:
        mine = by_goal.get(name, [])
        counts = _counts(mine)
        budget = f" of {rec.budget}" if rec.budget else ""
        why = waits_for(rec, mine, (clocks or {}).get(name), now)
        waiting = (f"waits: {why}" if rec.status == "active" else why) if why else ""
        status_style = {"active": "green", "done": "bold green", "stopped": "yellow", "invalid": "red"}
        goals.add_row(Text(f"goal {one_line(name, 40)}", "bold"), Text(rec.status, status_style.get(rec.status, "")),
                      Text(f"cycle {rec.cycle}"), Text(counts or "no tasks"),
                      Text(f"{spent(rec, mine)} tokens{budget}{dollars(spent_cost(rec, mine))}"), Text(waiting, "dim"))
    parts.append(goals if records else Text("no goal yet: push goals/<name>.md to main", "dim"))
    if len(shown) > GOALS_SHOWN:
        parts.append(Text(f"... {len(shown) - GOALS_SHOWN} more goals (gitswarm status)", "dim"))
    parts.append(Text(f"tasks: {_counts(tasks) or 'none on the board'}"))

    by_agent = {t.claim.worker: t for t in tasks if t.claim}
    handed = {str((t.result or {}).get("worker")): t for t in tasks if t.status == "landing"}
    table = Table.grid(padding=(0, 2))
    table.add_column(style="cyan")
    names = list(agents)
    for name in names[:AGENTS_SHOWN]:
        held = by_agent.get(name)
        if held is not None and held.claim is not None:
            table.add_row(Text(f"  {name}"), Text(held.id), Text(one_line(held.title)),
                          Text(ago(now - board_time(held.claim.at, now))))
        elif name in handed:
            t = handed[name]
            table.add_row(Text(f"  {name}"), Text(t.id), Text("in the landing queue", "dim"), Text(""))
        else:
            table.add_row(Text(f"  {name}"), Text("idle", "dim"), Text(""), Text(""))
    if len(names) > AGENTS_SHOWN:
        table.add_row(Text(f"... {len(names) - AGENTS_SHOWN} more agents", "dim"), Text(""), Text(""), Text(""))
    parts += [Text("agents", "bold"), table] if names else [Text("no agents in this process", "dim")]

    queued = sorted((t for t in tasks if t.status == "landing"), key=_stamp)  # board times sort as text
    if queued:
        oldest = ago(now - board_time((queued[0].result or {}).get("at"), now))
        ids = " ".join(t.id for t in queued[:8]) + (" ..." if len(queued) > 8 else "")
        parts.append(Text(f"landing queue: {len(queued)} task(s), the oldest {oldest}: {ids}"))
    else:
        parts.append(Text("landing queue: empty", "dim"))
    if train is not None:
        parts.append(Text(train))

    ended = heapq.nlargest(RECENT, (t for t in tasks if t.status in ("done", "failed", "dead") and t.result),
                           key=_stamp)
    if ended:
        parts.append(Text("recent", "bold"))
    for t in ended:
        result = t.result or {}
        when = ago(now - board_time(result.get("at"), now))
        if t.status == "done":
            commit = str(result.get("commit", ""))[:10]
            parts.append(Text.assemble(("  landed " if commit else "  done ", "green"), f"{t.id} {one_line(t.title)}",
                                       f" {commit}" if commit else "", (f"  {when} ago", "dim")))
        else:
            parts.append(Text.assemble((f"  {t.status} ", "red"), f"{t.id} {one_line(t.title, 40)}: ",
                                       one_line(result.get("reason"), 80), (f"  {when} ago", "dim")))
    return Group(*parts)


class LiveView:
    """Draws `frame` about once a second on `console` while the swarm runs."""

    def __init__(self, console: Any, board: Any, agents: Callable[[], list[str]], title: str,
                 clocks: dict[str, Any] | None = None, train: Callable[[], Any] | None = None, every: float = EVERY):
        self.console, self.board, self.agents, self.title, self.clocks = console, board, agents, title, clocks
        self.train = train or (lambda: None)
        self.every = every
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Any = None
        self.failed: str | None = None  # why the view gave up

    def render(self) -> Any:
        return frame(self.title, self.agents(), self.board.tasks(), self.board.records(),
                     dict(self.clocks) if self.clocks is not None else None, self.started, time.time(),
                     train_line(self.train()))

    def start(self) -> None:
        from rich.live import Live

        self._live = Live(console=self.console, auto_refresh=False, transient=False,
                          redirect_stdout=False, redirect_stderr=False)
        self._live.start()
        self._thread = threading.Thread(target=self._run, name="live-view", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._live.update(self.render(), refresh=True)
                failures = 0
            except Exception as e:  # the view is for people: never the swarm's problem
                failures += 1
                if failures >= FAILURES_TO_GIVE_UP:
                    self._give_up(f"{type(e).__name__}: {e}")
                    return
            self._stop.wait(self.every)

    def _give_up(self, why: str) -> None:
        self.failed = why
        try:
            self._live.stop()
        except Exception:
            pass
        logs.fall_back_to_lines(f"stopped after {FAILURES_TO_GIVE_UP} failed frames ({why})")

    def close(self) -> None:
        """The last frame stays on the terminal (the run's end state), the cursor below it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._live is not None and self.failed is None:
            try:
                self._live.update(self.render(), refresh=True)
            except Exception:
                pass
            self._live.stop()


def run_with_view(target: Callable[[], int], handler: Any, board: Any, agents: Callable[[], list[str]],
                  title: str, clocks: dict[str, Any] | None = None, train: Callable[[], Any] | None = None,
                  enabled: bool = True) -> int:
    """Run `target` (Daemon.run, Pool.run) with the live view when `enabled` and the log goes to a
    terminal as plain lines (`handler` is a logs.ConsoleHandler); else just run it."""
    console = getattr(handler, "console", None)
    if not enabled or console is None:
        return target()
    view = LiveView(console, board, agents, title, clocks, train)
    try:
        view.start()
    except Exception as e:  # no view: the lines go on
        logs.fall_back_to_lines(f"cannot start ({type(e).__name__}: {e})")
        return target()
    try:
        return target()
    finally:
        view.close()
