"""Count the runs of a command from outside, whatever ran it and in whatever sandbox: the
benchmark's agent and test commands each sleep a time no other process uses (`sleep 5.000173`),
and a thread scans /proc for `sleep` processes with those arguments. A run is one (pid, start
time) pair; the sandbox's own pid namespace does not hide it from the host's /proc. A run shorter
than the scan interval can be missed: the benchmark's runs last a second or more."""

from __future__ import annotations

import os
import threading
import time


class SleepWatch(threading.Thread):
    def __init__(self, kinds: dict[str, str], every: float = 0.4):
        """`kinds`: sleep argument -> what it counts ("agent", "test")."""
        super().__init__(daemon=True, name="sleepwatch")
        self.kinds, self.every = kinds, every
        self.seen: dict[tuple[int, str], list] = {}  # (pid, start) -> [kind, first seen, last seen]
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.scan()
            self.done.wait(self.every)

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.scan()

    def scan(self) -> None:
        now = time.time()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                if len(argv) < 2 or not argv[0].endswith(b"sleep"):
                    continue
                kind = self.kinds.get(argv[1].decode(errors="replace"))
                if kind is None:
                    continue
                with open(f"/proc/{name}/stat", "rb") as f:
                    start = f.read().rsplit(b")", 1)[1].split()[19].decode()  # field 22: start time
            except OSError:  # gone meanwhile
                continue
            run = self.seen.setdefault((int(name), start), [kind, now, now])
            run[2] = now

    def runs(self, kind: str) -> list[tuple[float, float]]:
        """(first seen, last seen) of each run of `kind`, by start."""
        return sorted((first, last) for k, first, last in self.seen.values() if k == kind)

    def peak(self, kind: str) -> int:
        """The most runs of `kind` seen at one scan (an estimate of how many ran at once)."""
        events = sorted([(f, 1) for f, _ in self.runs(kind)] + [(l, -1) for _, l in self.runs(kind)],
                        key=lambda e: (e[0], -e[1]))
        most = now = 0
        for _, step in events:
            now += step
            most = max(most, now)
        return most
