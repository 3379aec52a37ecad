"""A pool of agents in one process: worker and sub-planner threads sharing one Board (their claims
and landings are group-committed), a heartbeat thread renewing the leases of those holding a
claim, and a clean stop that hands their tasks back. `gitswarm serve` runs one beside the hub's
events; `gitswarm worker` runs one alone against any hub."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from . import sandbox
from .board import Board
from .endpoints import Endpoints, load_host
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, GitswarmError
from .logs import error, warning
from .agents.backends import make_model
from .roles import Swarm, planner, stderr_log, worker
from .watch import Watcher


def safe_name(name: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", name or socket.gethostname())[:40] or "gitswarm"


class Pool:
    def __init__(self, remote: str, workers: int = 4, planners: int = 0, name: str | None = None,
                 log: Callable[[str], None] = stderr_log, model_factory=make_model,
                 lease: float = 900.0, retry_backoff: float = 0.0, watch: bool = True,
                 poll: float = 1.0, poll_max: float = 30.0, endpoints: Endpoints | None = None,
                 train: bool = False, train_slots: int = 1, train_lease: int = 60):
        """`watch`: wake idle agents when the hub's board moves (watch.py); off where the caller
        rings `swarm.work_ready` itself (the daemon, on the hub's events). `endpoints`: the host's
        model endpoints, read here (endpoints.load_host) when not given. Refuses to start
        (GitswarmError) when agents' commands would run without the sandbox they are meant to have,
        or the host's endpoints file is broken. `train`: this pool may run the hub's landing train
        (gitswarm/train.py) when nobody else holds it, testing `train_slots` batches at a time."""
        self.sandbox = sandbox.check()  # the line to log: before anything is fetched or run
        endpoints = load_host() if endpoints is None else endpoints
        self.board = Board(remote, lease=max(1, int(round(lease))), retry_backoff=retry_backoff)
        self.name = safe_name(name)
        workdir = self.board.mirror.path.parent / "work" / f"{self.name}-{os.getpid()}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.swarm = Swarm(self.board, workdir, log=log, model_factory=model_factory, endpoints=endpoints)
        if "://" not in self.board.remote and Path(self.board.remote).is_dir():
            self.swarm.hidden.append(Path(self.board.remote))  # a hub on this machine: agents never see it
        self.workers, self.planners, self.lease = workers, planners, lease
        self.train, self.train_slots, self.train_lease = train, train_slots, train_lease
        self.threads: list[threading.Thread] = []
        self.train_runner = None  # the landing train this pool runs, once started (the live view shows it)
        self.log = log
        self.watcher = Watcher(self.board.mirror, self.swarm.work_ready, self.stop, poll, poll_max,
                               log=lambda line: log(f"{self.name}: {line}")) if watch else None
        if self.watcher:
            self.swarm.idle = max(self.swarm.idle, poll_max)

    @property
    def stop(self) -> threading.Event:
        return self.swarm.stop

    def agent_names(self) -> list[str]:
        return [f"{self.name}-w{i}" for i in range(self.workers)] + [f"{self.name}-p{i}" for i in range(self.planners)]

    def start(self) -> None:
        self.release_stale_claims()
        if self.watcher:
            self.watcher.start()
        self._thread(self._heartbeats, "heartbeats")
        if self.train:
            self._thread(self._train, f"{self.name}-train")
        for role, count, target in (("w", self.workers, worker.run), ("p", self.planners, planner.run)):
            for i in range(count):
                self._thread(self._guarded, f"{self.name}-{role}{i}", target)

    def close(self) -> None:
        """Tell the agents to stop, wait for them, hand back what they still hold."""
        self.stop.set()
        self.swarm.work_ready.set()
        for t in self.threads:
            t.join(timeout=30)
        if self.watcher:
            self.watcher.close()
        self.release_stale_claims()
        self.board.close()

    def run(self) -> int:
        """Run until SIGINT (exit EXIT_INTERRUPTED, as serve) or SIGTERM (0: a service manager's
        stop), for `gitswarm worker`."""
        interrupted: list[int] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda signum, _: (interrupted.append(signum), self.stop.set()))
        self.log(f"worker pool {self.name} on {self.board.remote}: {self.workers} workers, {self.planners} planners")
        self.log(self.sandbox)
        try:
            self.start()
            self.stop.wait()
            self.log("stopping: agents are told to stop, their tasks released")
        finally:
            self.close()
            self.log("stopped" + (f": {self.swarm.fatal}" if self.swarm.fatal else ""))
        return EXIT_ERROR if self.swarm.fatal else EXIT_INTERRUPTED if signal.SIGINT in interrupted else 0

    def _thread(self, target, name: str, *args) -> None:
        t = threading.Thread(target=target, args=(*args, name) if args else (), name=name, daemon=True)
        t.start()
        self.threads.append(t)

    def _heartbeats(self) -> None:
        """Renew the leases of the agents that hold a claim: a third of the lease apart."""
        while not self.stop.wait(max(0.2, self.lease / 3)):
            try:
                self.board.heartbeat(set(self.swarm.holding))
            except GitswarmError as e:
                self.log(warning(f"heartbeat: {e.message}"))

    def _train(self) -> None:
        from .train import Train

        self.train_runner = Train(self.swarm, f"{self.name}-train", slots=self.train_slots, lease=self.train_lease)
        self.train_runner.run()

    def _guarded(self, target, name: str) -> None:
        pause = 0.0
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                target(self.swarm, name)
            except Exception as e:  # a role's loop must not die silently: log, pause, go on
                if time.monotonic() - started > 60:
                    pause = 0.0  # it ran a while: a new failure, not the same one again
                if pause < 30:  # the same failure again and again (the hub out of reach): said less often
                    self.log(error(f"{name}: {type(e).__name__}: {e}"))
                pause = min(60.0, max(1.0, pause * 2))
                self.stop.wait(pause)

    def release_idle_claims(self) -> None:
        """Claims under the name of one of our agents that holds nothing now (a claim whose push
        failed ambiguously and landed after all) go back to the board, without waiting for the
        lease. Uses the board as last fetched."""
        idle = set(self.agent_names()) - set(self.swarm.holding)
        self.board.release_held_by(idle, "that agent holds nothing", self.log)

    def release_stale_claims(self) -> None:
        """Claims held under this pool's agent names by nobody alive (an earlier run that died, or
        agents that did not stop in time) go back to the board."""
        self.board.refresh()
        alive = {th.name for th in self.threads if th.is_alive()}
        self.board.release_held_by(set(self.agent_names()) - alive, "nobody alive holds it", self.log)
