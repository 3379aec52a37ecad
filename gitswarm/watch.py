"""How idle agents learn that the board moved, without asking the hub all the time.

`Signal` is the wake-up call between threads: a generation counter, so that an agent that looked at
the board and found nothing sleeps only if nothing changed since it looked (an Event can be cleared
by one thread before another saw it set).

`Watcher` rings it when the hub's `tasks` branch moves. A hub on another machine is asked with
`git ls-remote` (one round trip, no objects): at once after a change, then less and less often while
nothing moves, from `poll` up to `poll_max` seconds. A hub on this machine is watched instead: its
post-receive hook writes a file into the hub's event spool on every push, and watchdog says so at
once.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from . import events, names
from .errors import GitswarmError
from .gitmirror import Mirror



class Wake(FileSystemEventHandler):
    """watchdog's handler: any change in the watched folder rings the bell."""

    def __init__(self, bell) -> None:
        self.bell = bell

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.bell.set()


class Signal:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.generation = 0

    def set(self) -> None:
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float | None = None) -> bool:
        """Sleep until the generation moves past `seen` (what the caller read before it looked)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.generation != seen, timeout)


class Watcher:
    def __init__(self, mirror: Mirror, signal: Signal, stop: threading.Event, poll: float = 1.0,
                 poll_max: float = 30.0, log: Callable[[str], None] = print):
        self.mirror, self.signal, self.stop, self.log = mirror, signal, stop, log
        self.poll, self.poll_max = poll, max(poll, poll_max)
        remote = mirror.remote
        self.local = None if "://" in remote or not Path(remote).is_dir() else Path(remote)
        self.polls = 0  # ls-remote calls made: what an idle worker costs the hub
        self._observer = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.local is not None and events.spool_dir(self.local).is_dir():
            from watchdog.observers import Observer

            self._observer = Observer()
            self._observer.schedule(Wake(self.signal), str(events.spool_dir(self.local)))
            self._observer.start()
        self._thread = threading.Thread(target=self._run, name="watcher", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        """Poll with backoff. With the spool watched, only as a slow safety net."""
        interval = self.poll_max if self._observer else self.poll
        last, failing = None, False
        while not self.stop.wait(interval):
            try:
                tip = self._tip()
            except GitswarmError as e:
                if not failing:
                    self.log(f"cannot reach the hub (retrying, at most every {self.poll_max:g}s): {e.message}")
                failing, interval = True, min(interval * 2, self.poll_max)
                continue
            if failing:
                self.log("the hub answers again")
                failing = False
            if tip != last:
                last = tip
                self.signal.set()
                interval = self.poll_max if self._observer else self.poll
            elif not self._observer:
                interval = min(interval * 2, self.poll_max)

    def _tip(self) -> str | None:
        self.polls += 1
        return self.mirror.remote_refs(names.BOARD).get(names.BOARD)
