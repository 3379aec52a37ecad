"""The local mirror of a hub: a bare repository in the cache (GITSWARM_CACHE) that holds what we
fetched of one hub and the commits we build, and the pushes from it to the hub, read back from
`git push --porcelain`. Part of the git layer: it runs git through gitswarm/git.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import names
from .errors import GitError, PushDeclined, PushRace
from .git import APPLIED, DROPPED, STALE, bound_libgit2_memory, failure, network_timeout, open_repository, run


def normalize_remote(remote: str) -> str:
    """A remote as git takes it; local paths become absolute (we push from another directory)."""
    if "://" in remote:
        return remote
    if re.match(r"[^/]*:", remote) and not os.path.exists(remote):  # scp-like user@host:path
        return remote
    return str(Path(remote).expanduser().resolve())


def cache_root() -> Path:
    base = os.environ.get("GITSWARM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gitswarm")
    return Path(base)


@dataclass
class PushResult:
    ok: bool
    raced: set[str]  # branches refused because they moved underneath
    lines: list[str]
    applied: dict[str, str] = field(default_factory=dict)  # ref -> the tip the hub made of a rebased push
    dropped: set[str] = field(default_factory=set)  # commits the hub left out of it (they conflicted)


class Mirror:
    """A local bare repository that holds what we fetched of one hub, and the commits we build.

    Shared between processes (objects are written atomically); each Mirror instance fetches into a
    ref of its own, so concurrent fetches never fight over a ref or FETCH_HEAD.
    """

    def __init__(self, remote: str, root: Path | None = None):
        bound_libgit2_memory()
        self.remote = normalize_remote(remote)
        root = root or cache_root()
        self.path = root / (hashlib.sha1(self.remote.encode()).hexdigest()[:16] + ".git")
        if not (self.path / "HEAD").exists():
            _create_bare(self.path)
        self.repo = open_repository(self.path)
        self.prefix = f"{names.GITSWARM}{os.getpid()}-{os.urandom(4).hex()}"
        self.applies = True  # the hub applies pushes to refs/for/ (gitswarm/applier.py) until it says not

    def fetch(self, branch: str, also: list[str] | tuple[str, ...] = ()) -> str | None:
        """Fetch the hub's branch (and the refs `also` names, as fetch_refs does, in the same
        fetch); its commit id, or None when the hub has no such branch."""
        ref = f"{self.prefix}/{branch}"
        proc = self._fetch([f"+{names.branch_ref(branch)}:{ref}"] + self._refspecs(also))
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace")
            if "couldn't find remote ref" in err:
                return None
            raise failure(f"cannot fetch {branch} from {self.remote}", proc.stderr,
                          "check that the hub exists and that you can reach it with `git ls-remote`")
        try:
            tip = str(self.repo.lookup_reference(ref).target)
        except KeyError:  # deleted under us: the mirror is being closed by another thread
            raise GitError(f"cannot read {branch} as fetched: the mirror of {self.remote} is closing") from None
        self.keep(branch, tip)
        return tip

    def keep(self, name: str, tip: str) -> None:
        """Point refs/gitswarm/hub/<name> (names.kept_ref) at a tip we fetched or pushed: it outlives
        this process's refs, so `git gc` keeps (and packs) what the hub holds instead of counting it
        unreachable. Several processes may set it at once; any tip they fetched will do."""
        try:
            self.repo.create_reference(names.kept_ref(name), tip, force=True)
        except Exception:  # another process holds the ref's lock: its tip is as good as ours
            pass

    def maintain(self) -> None:
        """`git gc --auto` on the mirror: does nothing until loose objects pile up (gc.auto, 6,700 by
        default), then packs them in a process of its own (gc.autoDetach): fetches, the commits we
        build and pushes lost in races all leave loose objects here, and fetch skips maintenance."""
        run(["gc", "--auto", "--quiet"], cwd=self.path, check=False)
        self.reopen()  # libgit2 keeps the packs it opened, those gc merged away too

    def reopen(self) -> None:
        """A fresh libgit2 handle on the mirror. libgit2 keeps, per open pack file, every delta base
        it resolved (up to 16 MiB a pack, not settable): a daemon diffing trees gc packed grew its
        heap ~0.5 MB per 1,000 tasks with it. Threads still reading the old handle keep it until
        they let go; what either writes is on disk, for both to read."""
        self.repo = open_repository(self.path)

    def remote_refs(self, *patterns: str) -> dict[str, str]:
        """{ref: sha} of the hub's refs matching any of the patterns (one `git ls-remote`)."""
        proc = run(["ls-remote", self.remote, *patterns], cwd=self.path, check=False, timeout=network_timeout())
        if proc.returncode:
            raise failure(f"git ls-remote {self.remote} failed", proc.stderr)
        return {ref: sha for sha, ref in (ln.split("\t") for ln in proc.stdout.decode().splitlines() if "\t" in ln)}

    def take(self, repository: str | Path, rev: str) -> str:
        """Bring a commit, and what it needs, from a repository on this machine (a person's clone)
        into the mirror, so that it can be pushed from here; its full id."""
        proc = run(["rev-parse", "--verify", "-q", f"{rev}^{{commit}}"], cwd=repository, check=False)
        sha = proc.stdout.decode().strip()
        if proc.returncode or not sha:
            raise GitError(f"{rev} is not a commit of the repository at {repository}",
                           "give a commit of the repository you run this from (HEAD, a branch, an id)")
        proc = run(["fetch", "-q", "--no-write-fetch-head", "--no-tags", "--no-auto-maintenance", str(repository),
                    f"+{sha}:{self.prefix}/taken"], cwd=self.path, check=False)
        if proc.returncode:
            raise GitError(f"cannot take {sha[:10]} from {repository}: {proc.stderr.decode(errors='replace').strip()}")
        return sha

    def fetch_refs(self, refs: list[str]) -> None:
        """Fetch refs of the hub (objects only: what they point at becomes readable here)."""
        if refs:
            proc = self._fetch(self._refspecs(refs))
            if proc.returncode:
                raise failure("git fetch failed", proc.stderr)

    def _refspecs(self, refs: list[str] | tuple[str, ...]) -> list[str]:
        return [f"+{r}:{self.prefix}/{r.removeprefix(names.REFS)}" for r in refs]

    def _fetch(self, refspecs: list[str], tries: int = 5) -> subprocess.CompletedProcess[bytes]:
        """`git fetch` into the mirror. A worktree being added is half made for a moment (a null
        HEAD, no commondir yet), and a fetch's connectivity check over every ref dies on it ("bad
        object worktrees/<name>/HEAD", "failed to read worktrees/<name>/commondir"): that fetch is
        tried again."""
        for attempt in range(tries):
            proc = run(["fetch", "--no-write-fetch-head", "--no-tags", "--no-auto-maintenance", "-q",
                        self.remote, *refspecs], cwd=self.path, check=False, timeout=network_timeout())
            err = proc.stderr.decode(errors="replace")
            if proc.returncode == 0 or not re.search(r"(bad object|failed to read) worktrees/", err):
                return proc
            time.sleep(0.01 * (attempt + 1))
        return proc

    def push(self, updates: dict[str, str], atomic: bool = False, new_only: bool = False,
             apply: bool = False, replay: bool = False) -> PushResult:
        """Push commit ids to refs of the hub (`{ref: sha}`). Raises PushRace when a ref moved
        underneath, PushDeclined when the hub's hook refused, GitError otherwise. `new_only`: the
        refs are created, never moved (a ref that exists already is a race lost: PushRace).
        `apply`: ask the hub to apply the push (refs/for/<ref>, gitswarm/applier.py: in order, the
        board's commits rebased onto its tip when their files did not change meanwhile, every ref
        moved at once), or push plainly to a hub that does not; `replay`: main's work may be
        replayed onto main's tip by the hub. What the hub took: the refs it
        rebased (`applied`: their tips are not the commits pushed), the commits it left out."""
        if apply and self.applies:
            try:
                return self._push({names.apply_ref(ref, replay): sha for ref, sha in updates.items()}, False, False)
            except PushDeclined as e:
                if not any(ln.startswith(f"gitswarm: rejected {names.APPLY}") for ln in e.lines):
                    raise
                self.applies = False  # an older hub: it takes plain pushes only
        return self._push(updates, atomic, new_only)

    def _push(self, updates: dict[str, str], atomic: bool, new_only: bool) -> PushResult:
        args = ["push", "--porcelain", "--no-verify"] + (["--atomic"] if atomic else [])
        args += [f"--force-with-lease={ref}:" for ref in updates] if new_only else []
        args += [self.remote] + [f"{sha}:{ref}" for ref, sha in updates.items()]
        proc = run(args, cwd=self.path, check=False, timeout=network_timeout())
        branches = [names.branch_of(names.applied_ref(ref) or ref) for ref in updates]
        result = parse_push(proc.returncode, proc.stdout.decode(errors="replace"),
                            proc.stderr.decode(errors="replace"), branches)
        if result.ok:
            return result
        if result.raced:
            raise PushRace(result.raced)
        if any("hook declined" in line for line in result.lines):
            raise PushDeclined([ln for ln in result.lines if not ln.startswith("!")])
        raise GitError(f"push to {self.remote} failed:\n" + "\n".join(result.lines))

    def close(self) -> None:
        for raw in self.repo.raw_listall_references():
            name = raw.decode(errors="replace")
            if name.startswith(self.prefix + "/"):
                self.repo.lookup_reference(name).delete()
        self.repo.free()


_RACE = ("non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref",
         "stale info", "incorrect old value")


def parse_push(code: int, stdout: str, stderr: str, branches: list[str]) -> PushResult:
    """Read `git push --porcelain` (an --atomic push refused on the client side prints the human
    format on stderr instead): which branches were refused, and why."""
    remote = [ln[len("remote: "):].rstrip() for ln in stderr.splitlines() if ln.startswith("remote: ")]
    rejected = [ln.strip() for ln in (stdout + "\n" + stderr).splitlines()
                if not ln.startswith("remote: ") and ("[rejected]" in ln or "[remote rejected]" in ln)]
    if code == 0 and not rejected:  # what the hub applying it made of it (gitswarm/applier.py)
        applied = {ref: rest.split()[0] for ref, rest in _said(remote, APPLIED) if names.SHA_RE.match(rest)}
        return PushResult(True, set(), remote, applied, {commit for commit, _ in _said(remote, DROPPED)})
    raced: set[str] = set()
    for line in rejected:
        reason = line[line.rfind("("):]
        if "hook declined" not in reason and any(r in reason for r in _RACE):
            target = line.split("\t")[1].split(":")[-1] if "\t" in line else line.split(" -> ")[-1].split(" (")[0]
            raced.add(names.branch_of(names.applied_ref(target.strip()) or target.strip()))
    for ln in remote:
        if ln.startswith(STALE):
            raced.add(names.branch_of(ln[len(STALE):].split()[0]))
    if not raced and any("atomic transaction failed" in ln for ln in rejected):
        raced = set(branches)  # the hub did not say which one moved
    lines = [ln for ln in remote if ln.strip()] + rejected
    if not rejected:
        lines += [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("remote: ")]
    return PushResult(False, raced, lines)


def _said(remote: list[str], prefix: str) -> list[tuple[str, str]]:
    """(first word, the rest) of the hub's `<prefix> <word> <rest>` lines, a full object id or a ref
    in the first word's place."""
    found = [ln[len(prefix) + 1:].partition(" ") for ln in remote if ln.startswith(prefix + " ")]
    return [(word, rest) for word, _, rest in found if names.SHA_RE.match(word) or word.startswith(names.REFS)]


def _create_bare(path: Path) -> None:
    """Create a bare repository atomically: two processes may race to create the same mirror."""
    import shutil
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".new-", dir=path.parent)
    run(["init", "-q", "--bare", tmp])
    try:
        os.rename(tmp, path)
    except OSError:  # somebody else made it first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (path / "HEAD").exists():
            raise
