"""The hub applies a push: git's proc-receive hook for `refs/for/<ref>` (receive.procReceiveRefs,
set by `gitswarm init`). A board push (gitswarm/groupcommit.py) names the refs it means under
refs/for/ (names.apply_ref); here the hub, one push at a time (a lock in the hub), rebases its
commits on `tasks` onto the branch's tip, checks the result with the guard's own checks, as
pre-receive would have checked the same push made on that tip, and moves every ref in one
compare-and-swap transaction. The pusher learns the refs' new tips from git's report.

Why: with plain pushes, `tasks` is a compare-and-swap on one ref, and every change of the board
by any process moves it. A process whose push is slower (a landing's long check, a long chain)
loses the race to a stream of quick ones again and again: 32 refusals in a row in the 256-worker
benchmark, and a claim then waits 30 s (benchmarks/RESULTS.md, issue 17). Here two pushes
conflict only when they change the same file (the same task): a per-file compare-and-swap, and
the hub takes pushes in the order they come.

What is applied: `tasks` (a chain of commits, each adding or changing regular files: replayed
when its files did not change on the tip meanwhile, git.replay_commit; in a push that does not
land work on main, a commit whose files did change is left out and named to the pusher
(`gitswarm: dropped <commit> <why>`), who makes that change again on the new tip: of 64 claims a
process pushes at once, only those of tasks another process just claimed are lost), `main` and heartbeat
refs (fast-forwards only, never rewritten: code is not rebased by the hub). Anything else, or a
commit that cannot be replayed, is refused as stale (the pusher fetches and pushes again), or with
the guard's message. The hub's pushes without a guard running pay for pygit2's import here.

The conversation is git's pkt-line protocol on stdin and stdout (githooks(5), proc-receive).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Callable

from . import names
from .githook import HookRepo, LibRepo, reader
from .git import APPLIED, DROPPED, STALE, ZERO, Conflict, open_repository, replay_commit, replay_onto
from .gitrefs import update_refs

LOCK = os.path.join("gitswarm", "apply.lock")
MAX_CHAIN = 1000  # commits of one push replayed; a longer history is applied only as a fast-forward
TRIES = 5  # transactions refused because a ref moved under the lock (a plain push to it)

Check = Callable[[list[tuple[str, str, str]], HookRepo], list[str]]  # (old, new, ref) updates, read through -> refusal


class Refused(Exception):
    """The push is not applied: `reason` for git's report, `lines` for the pusher's terminal."""

    def __init__(self, reason: str, lines: list[str], ref: str | None = None):
        super().__init__(reason)
        self.reason, self.lines, self.ref = reason, lines, ref  # ref: the one refused; None: the push


# ---------------------------------------------------------------- pkt-line

def _read_exact(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            raise EOFError("receive-pack closed the conversation")
        data += chunk
    return data


def read_packet(fd: int) -> bytes | None:
    """One pkt-line's payload; None for a flush packet."""
    size = int(_read_exact(fd, 4), 16)
    return None if size == 0 else _read_exact(fd, size - 4)


def write_packets(fd: int, payloads: list[bytes]) -> None:
    """Packets, then a flush packet."""
    data = b"".join(b"%04x" % (len(p) + 4) + p for p in payloads) + b"0000"
    while data:
        data = data[os.write(fd, data):]


def converse(check: Check, inp: int = 0, out: int = 1) -> int:
    """The proc-receive conversation: version, commands, one result per command."""
    while read_packet(inp) is not None:  # "version=1", capabilities; we ask for none
        pass
    write_packets(out, [b"version=1"])
    commands = []
    while (line := read_packet(inp)) is not None:
        old, new, ref = line.decode("utf-8", errors="replace").strip().split(" ", 2)
        commands.append((old, new, ref))
    try:
        applied = apply(commands, check)
        results = []
        for _, _, ref in commands:
            target = names.applied_ref(ref)
            old, new = applied[target]  # type: ignore[index]
            results += [b"ok " + ref.encode(), b"option refname " + target.encode(),  # type: ignore[union-attr]
                        b"option old-oid " + old.encode(), b"option new-oid " + new.encode()]
    except Refused as e:
        for line in e.lines:
            print(line, file=sys.stderr)
        results = [b"ng %s %s" % (ref.encode(), (e.reason if e.ref in (None, names.applied_ref(ref))
                                                 else "refused with the rest of the push").encode())
                   for _, _, ref in commands]
    except Exception as e:  # a bug must not let a push through unchecked: refuse, and say why
        print(f"gitswarm: internal error applying the push, refused: {type(e).__name__}: {e}", file=sys.stderr)
        results = [b"ng %s internal error" % ref.encode() for _, _, ref in commands]
    sys.stderr.flush()
    write_packets(out, results)
    return 0


# ---------------------------------------------------------------- applying

def apply(commands: list[tuple[str, str, str]], check: Check, git_dir: str | None = None) -> dict[str, tuple[str, str]]:
    """Apply (old, new, refs/for/<ref>) commands: {ref: (old tip, new tip)}. Refused when not."""
    git_dir = git_dir or os.environ.get("GIT_DIR", ".")
    wanted: dict[str, str] = {}
    for _, new, ref in commands:
        target = names.applied_ref(ref)
        if target is None or target in wanted:
            raise Refused("not applied", [f"gitswarm: rejected {ref}: the hub applies {names.APPLY}heads/tasks, "
                                          f"{names.APPLY}heads/main and {names.APPLY}gitswarm/heartbeats/<worker>, "
                                          "each once a push"])
        if new == ZERO:
            raise Refused("not applied", [f"gitswarm: rejected {target}: a hub's refs are never deleted"])
        wanted[target] = new
    replay = any(ref.startswith(names.REPLAY) for _, _, ref in commands)
    with _Lock(git_dir):
        repo = _Hub(git_dir)
        try:
            for _ in range(TRIES):
                tips = {ref: repo.reader.ref(ref) for ref in wanted}
                dropped: list[str] = []
                planned = _plan(repo, wanted, tips, replay, dropped)
                updates = [(tips[ref] or ZERO, planned[ref], ref) for ref in wanted]
                problems = check([u for u in updates if u[0] != u[1]], repo.reader)  # a ref that stays is no update
                if problems:
                    raise Refused("hook declined", problems)
                if update_refs(git_dir, updates, repo.lib):
                    for ref in (names.MAIN, names.BOARD):
                        if ref in planned and planned[ref] != wanted[ref]:
                            print(f"{APPLIED} {ref} {planned[ref]}", file=sys.stderr)
                    for line in dropped:
                        print(line, file=sys.stderr)
                    return {ref: (old, new) for old, new, ref in updates}
        finally:
            repo.close()
    raise Refused("stale info", [f"{STALE} {next(iter(wanted))} kept moving while the hub applied the push: "
                                 "fetch and retry"])


class _Hub:
    """The hub as the applier reads and writes it: `reader` (githook.reader(): through libgit2 in
    the resident guard; through git's command line in a hook's own process, where a push that only
    fast-forwards pays no pygit2 import), and `objects`, a pygit2 repository to replay commits
    with (the reader's own when it has one, else opened on first use)."""

    def __init__(self, git_dir: str):
        self.git_dir = git_dir
        self.reader = reader()
        self._objects = None

    @property
    def lib(self):
        """The reader's own pygit2 repository (in the resident guard), else None."""
        return self.reader.repo if isinstance(self.reader, LibRepo) else None

    @property
    def objects(self):
        if self.lib is not None:
            return self.lib
        if self._objects is None:
            self._objects = open_repository(self.git_dir)
        return self._objects

    def forward(self, tip: str | None, new: str) -> bool:
        """Whether `new` leaves the tip where it is or moves it forward."""
        if tip is None or tip == new or tip in (self.reader.parents(new) or ()):  # one commit on the tip: no process
            return True
        return self.reader.is_ancestor(tip, new)

    def close(self) -> None:
        self.reader.close()
        if self._objects is not None:
            self._objects.free()


def _plan(repo: _Hub, wanted: dict[str, str], tips: dict[str, str | None], replay: bool,
          dropped: list[str]) -> dict[str, str]:
    """What each ref becomes, main first: `new` when it fast-forwards the tip; main's work replayed
    onto its tip when the pusher allows it (`replay`), and then the task files that name a
    replayed commit as a result name its replay; tasks' commits replayed onto its tip, those that
    conflict left out (their lines in `dropped`) unless the push lands work. Refused as stale when
    a ref cannot be applied (the pusher fetches and pushes again). {ref: its new tip}."""
    planned: dict[str, str] = {}
    moved: dict[str, str] = {}
    for ref, new in sorted(wanted.items(), key=lambda item: item[0] != names.MAIN):
        tip = tips[ref]
        if repo.forward(tip, new):
            planned[ref] = new
            if tip is None or ref != names.BOARD or not moved:
                continue
        why = ""
        if ref == names.MAIN and replay:
            replayed = replay_onto(repo.objects, new, tip)
            if replayed is not None:
                planned[ref], moved = replayed
                continue
            why = ", and its work does not replay onto it"
        elif ref == names.BOARD:
            try:
                planned[ref] = _replay(repo.objects, new, tip, None if names.MAIN in wanted else dropped,
                                       _naming(moved))
                continue
            except Conflict as e:
                why = f", and {e}"
        raise Refused("stale info", [f"{STALE} {ref} moved to {(tip or ZERO)[:10]} while you pushed{why}: "
                                     "fetch and retry"], ref)
    return planned


def _naming(moved: dict[str, str]):
    """A rewrite for git.replay_commit: a task file whose result names a commit of main that the
    hub replayed names the replay instead (what the pusher would have written on that tip)."""
    if not moved:
        return None
    from . import task as T

    def rewrite(path: str, data: bytes) -> bytes | None:
        try:
            t = T.parse(data, path)
        except Exception:  # not a task file, or a bad one: as pushed, for the check to judge
            return None
        commit = (t.result or {}).get("commit")
        if commit not in moved:
            return None
        return T.dump(replace(t, result=dict(t.result, commit=moved[commit])))  # type: ignore[arg-type]
    return rewrite


def _replay(repo, new: str, tip: str, dropped: list[str] | None, rewrite=None) -> str:
    """`new`'s commits that `tip` lacks, oldest first, replayed one by one onto `tip`. A commit
    that conflicts is left out when `dropped` is a list (its `DROPPED` line added there; a later
    commit that changes one of its files then conflicts too; all of them left out: `tip`, and
    the push's heartbeats still move, its claims made again by the pusher on the new tip, with no
    refusal and backoff), else raises Conflict."""
    import pygit2

    if tip == new:
        return new
    walker = repo.walk(new, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
    walker.hide(tip)
    commits = []
    for commit in walker:
        commits.append(str(commit.id))
        if len(commits) > MAX_CHAIN:
            raise Conflict(new, f"more than {MAX_CHAIN} commits are not replayed")
    onto = tip
    for commit in commits:
        try:
            onto = replay_commit(repo, commit, onto, rewrite)
        except Conflict as e:
            if dropped is None:
                raise
            dropped.append(f"{DROPPED} {commit} {e}")
    if not commits:  # nothing new: a stale push
        raise Conflict(new, "no commit of the push replays on the tip")
    return onto  # the tip itself when every commit was left out: the push's other refs still move


class _Lock:
    """One push applied at a time: the hub's `gitswarm/apply.lock` (flock), taken in arrival order
    as the kernel hands it over. Correctness does not rest on it (the transaction compares and
    swaps each ref): a hub where the file cannot be opened applies without it."""

    def __init__(self, git_dir: str):
        self.path = os.path.join(git_dir, LOCK)
        self.fd: int | None = None

    def __enter__(self) -> "_Lock":
        import fcntl

        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError:
            return self
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
