"""The landing train's lease: `refs/gitswarm/train` on the hub, a chain of lease commits (gitswarm/queue.py).

One process holds it at a time. The holder renews it by pushing the next commit of the chain a third
of the lease apart (and with every landing, in the same atomic push: a train that lost its lease
cannot land). Another process takes it over only once the holder has been silent for longer than its
lease: by the lease commit's date here, and by the hub's reflog in its guard, which refuses a takeover
too soon. A lease commit's body says what its train is doing, for `gitswarm status`.
"""

from __future__ import annotations

import time
from typing import Callable

from . import git, names, queue
from .errors import GitError, PushDeclined, PushRace
from .gitmirror import Mirror


class TrainLease:
    def __init__(self, mirror: Mirror, holder: str, seconds: int, log: Callable[[str], None]):
        self.mirror, self.holder, self.seconds, self.log = mirror, holder, seconds, log
        self.tip: str | None = None  # our last lease commit, as the hub holds it; None: not held
        self.renewed = 0.0
        self._waiting_on: str | None = None  # the holder we said we wait for

    def next(self, status: str) -> str:
        """The next lease commit (to push, alone or with a landing), saying `status`."""
        return git.write_commit(self.mirror.repo, self.tip, {},
                                queue.lease_message(self.holder, self.seconds, status),
                                (self.holder, f"{self.holder}@gitswarm"))

    def pushed(self, commit: str) -> None:
        """A landing push carried `commit` to the hub: the lease is renewed."""
        self.tip, self.renewed = commit, time.time()

    def drop(self) -> None:
        """Forget what we know: the next hold() asks the hub."""
        self.tip = None

    def hold(self, status: str) -> bool:
        """Hold the lease: renew it when a third of it has passed; take it when nobody holds it or
        its holder's lease lapsed. False while another holds it (said once)."""
        if self.tip is not None and time.time() - self.renewed < self.seconds / 3:
            return True
        current = self.mirror.remote_refs(names.TRAIN).get(names.TRAIN)
        if current is not None and current != self.tip:
            self.mirror.fetch_refs([names.TRAIN])
            commit = self.mirror.repo[current]
            held = queue.parse_lease(commit.message)
            silent = time.time() - commit.commit_time
            if held is not None and held[0] != self.holder and silent <= held[1]:
                if self._waiting_on != held[0]:
                    self.log(f"held by {held[0]} (lease {held[1]}s); waiting to take over if it goes silent")
                    self._waiting_on = held[0]
                self.tip = None
                return False
            if held is not None and held[0] != self.holder:
                self.log(f"{held[0]}'s lease lapsed ({silent:.0f}s silent): taking the train over")
        self.tip = current
        lease = self.next(status)
        try:
            self.mirror.push({names.TRAIN: lease})
        except (PushRace, PushDeclined, GitError) as e:
            why = "another process moved it first" if isinstance(e, PushRace) else str(e)
            self.log(f"could not {'renew' if current else 'take'} the train's lease: {why}")
            self.tip = None
            return False
        if self._waiting_on is not None or current is None:
            self.log(f"{self.holder} holds the landing train")
        self._waiting_on = None
        self.pushed(lease)
        return True
