"""All git access: pygit2 for objects, the `git` command line for everything that crosses to another
repository (fetch, push) and inside hooks.

Never push with pygit2 to a local path: libgit2's local transport skips the server's hooks and its
receive.* settings, and it lost acknowledged updates under 8 concurrent pushers. Pushes go
through `git push`, so that receive-pack's compare-and-swap, the server's settings and its hooks
always run.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import GitError, HubUnreachable, PushDeclined, PushRace
from .proc import run_killable

ZERO = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # the tree with nothing in it: git knows it without storing it
PACK_WINDOW_BYTES = 1024 * 1024  # how much of a pack file libgit2 maps at once (default 1 GiB)
PACK_MAPPED_BYTES = 8 * 1024 * 1024  # pack windows kept mapped, all packs together (default 8 GiB)
PACK_FILES_OPEN = 64  # pack files kept open (default: no limit)
_KEEP_GIT_VARS = re.compile(
    r"GIT_(EXEC_PATH|SSH|SSH_COMMAND|SSH_VARIANT|SSL_CAINFO|SSL_NO_VERIFY|ASKPASS|TERMINAL_PROMPT|"
    r"HTTP_.*|CONFIG_NOSYSTEM|CONFIG_GLOBAL|CONFIG_SYSTEM|AUTHOR_.*|COMMITTER_.*|TRACE.*|PROTOCOL_FROM_USER)\Z")


# What a server sets for the hooks to tell how a push came (gitswarm/identity.py). A gitswarm
# started from an ssh login inherits them, and its local pushes would pass for pushes over ssh:
# the hub would refuse its goal records (only the hub's own local pushes may write them).
_TRANSPORT_VARS = ("SSH_CONNECTION", "SSH_CLIENT", "SSH_ORIGINAL_COMMAND", "GATEWAY_INTERFACE", "REMOTE_ADDR",
                   "REMOTE_PORT", "REMOTE_USER")


def no_git_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a git command gitswarm runs itself: minus the GIT_* variables that
    point git at a repository (hooks export them), and minus what a server sets to say how a push
    came (so a local push is seen as the local account's, however this process was started)."""
    env = dict(os.environ if env is None else env)
    return {k: v for k, v in env.items()
            if (not k.startswith("GIT_") or _KEEP_GIT_VARS.match(k)) and k not in _TRANSPORT_VARS}


def network_timeout() -> float:
    """Seconds a fetch, push or ls-remote may take before it counts as lost (GITSWARM_GIT_TIMEOUT,
    default 120): a connection cut mid-push would otherwise hang until TCP gives up, many minutes."""
    try:
        return max(1.0, float(os.environ.get("GITSWARM_GIT_TIMEOUT", "120")))
    except ValueError:
        return 120.0


def run(args: list[str], *, cwd: str | Path | None = None, input: bytes | None = None,
        env: dict[str, str] | None = None, check: bool = True,
        timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run `git <args>`; on failure (check=True) raise GitError with git's own message. After
    `timeout` seconds git and what it started (ssh, a remote helper) are killed: HubUnreachable.
    What git leaves running when it exits (a detached `gc --auto`) is left to run."""
    env = no_git_env() if env is None else env
    env.setdefault("LC_ALL", "C")
    argv = ["git", *args]
    ran = run_killable(argv, cwd, env, timeout, stdin=input, keep=None, grace=0.0, leftovers=False)
    if ran.ended == "time":
        raise HubUnreachable(f"git {' '.join(args[:2])} got no answer in {timeout:g}s: the hub is out of reach",
                             "check the network; GITSWARM_GIT_TIMEOUT sets how long to wait")
    proc = subprocess.CompletedProcess(argv, ran.code, ran.out, ran.err)
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise GitError(f"git {' '.join(args[:2])} failed: {err or 'exit ' + str(proc.returncode)}")
    return proc


def out(args: list[str], **kw) -> str:
    return run(args, **kw).stdout.decode().strip()


# What git says when there is no repository at the remote's address or nothing answers there.
_UNREACHABLE = re.compile(r"does not appear to be a git repository|unable to connect to|Connection refused|"
                          r"Could not resolve host|Failed to connect to|Connection timed out|No route to host|"
                          r"Network is unreachable|no such host|unable to look up", re.IGNORECASE)
_BOILERPLATE = re.compile(r"Could not read from remote repository|Please make sure you have|and the repository exists")


def failure(message: str, stderr: bytes, hint: str | None = None) -> GitError:
    """The error for a git command against a hub that failed with `stderr`: HubUnreachable when
    git could not reach the hub at all (exit code EXIT_UNREACHABLE), else GitError."""
    err = stderr.decode(errors="replace").strip()
    if _UNREACHABLE.search(err):
        err = "\n".join(ln for ln in err.splitlines() if ln.strip() and not _BOILERPLATE.search(ln))
        return HubUnreachable(f"{message}: {err}", hint or "check the hub's path or URL, and that you can reach it "
                                                          "with `git ls-remote HUB`")
    return GitError(f"{message}: {err}", hint)


# ---------------------------------------------------------------- remotes and the local mirror

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


def _bound_libgit2_memory() -> None:
    """libgit2's defaults suit a short command, not a daemon that reads a growing repository for
    days (benchmarks/memory.py, 10,000 tasks). Its object cache keeps parsed commits and trees up
    to 256 MiB (counting raw sizes: the memory used is 2-3 times that): RSS grew ~9 MB per 1,000
    tasks with it, and still filled ~10 MB between two reopenings of the mirror when capped at
    4 MiB; off, a refresh of a 10,000-task board takes ~1.3x as long (+5 ms). And it maps whole
    pack files and keeps up to 8 GiB of them mapped, so every page it ever read of a pack stays
    in RSS (+1.5 MB per 1,000 tasks). Set here, for the whole process."""
    import pygit2

    pygit2.settings.enable_caching(False)
    pygit2.settings.mwindow_size = PACK_WINDOW_BYTES
    pygit2.settings.mwindow_mapped_limit = PACK_MAPPED_BYTES
    pygit2.settings.mwindow_file_limit = PACK_FILES_OPEN


_CYCLIC = ("branches", "references", "remotes", "submodules")


def open_repository(path: Path):
    """A pygit2 handle that is freed as soon as its last user lets go. pygit2 hangs helper objects
    on each Repository (`branches`, `references`, `remotes`, `submodules`) that point back at it:
    a cycle, which only Python's cyclic collector frees, and a daemon holding a big board runs a
    full collection rarely. Every handle a Board replaced stayed alive with its packs' caches (the
    daemon's heap grew ~1 MB per 1,000 tasks). Without them, use the methods: lookup_reference,
    create_reference, raw_listall_references."""
    import pygit2

    repo = pygit2.Repository(str(path))
    for name in _CYCLIC:
        repo.__dict__.pop(name, None)
    return repo


class Mirror:
    """A local bare repository that holds what we fetched of one hub, and the commits we build.

    Shared between processes (objects are written atomically); each Mirror instance fetches into a
    ref of its own, so concurrent fetches never fight over a ref or FETCH_HEAD.
    """

    def __init__(self, remote: str, root: Path | None = None):
        _bound_libgit2_memory()
        self.remote = normalize_remote(remote)
        root = root or cache_root()
        self.path = root / (hashlib.sha1(self.remote.encode()).hexdigest()[:16] + ".git")
        if not (self.path / "HEAD").exists():
            _create_bare(self.path)
        self.repo = open_repository(self.path)
        self.prefix = f"refs/gitswarm/{os.getpid()}-{os.urandom(4).hex()}"

    def fetch(self, branch: str) -> str | None:
        """Fetch the hub's branch; its commit id, or None when the hub has no such branch."""
        ref = f"{self.prefix}/{branch}"
        proc = self._fetch([f"+refs/heads/{branch}:{ref}"])
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
        """Point refs/gitswarm/hub/<name> at a tip we fetched or pushed: it outlives this process's refs,
        so `git gc` keeps (and packs) what the hub holds instead of counting it unreachable. Several
        processes may set it at once; any tip they fetched will do."""
        try:
            self.repo.create_reference(f"refs/gitswarm/hub/{name}", tip, force=True)
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
            proc = self._fetch([f"+{r}:{self.prefix}/{r.removeprefix('refs/')}" for r in refs])
            if proc.returncode:
                raise failure("git fetch failed", proc.stderr)

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

    def push(self, updates: dict[str, str], atomic: bool = False, new_only: bool = False) -> None:
        """Push commit ids to refs of the hub (`{ref: sha}`). Raises PushRace when a ref moved
        underneath, PushDeclined when the hub's hook refused, GitError otherwise. `new_only`: the
        refs are created, never moved (a ref that exists already is a race lost: PushRace)."""
        args = ["push", "--porcelain", "--no-verify"] + (["--atomic"] if atomic else [])
        args += [f"--force-with-lease={ref}:" for ref in updates] if new_only else []
        args += [self.remote] + [f"{sha}:{ref}" for ref, sha in updates.items()]
        proc = run(args, cwd=self.path, check=False, timeout=network_timeout())
        branches = [ref.removeprefix("refs/heads/") for ref in updates]
        result = parse_push(proc.returncode, proc.stdout.decode(errors="replace"),
                            proc.stderr.decode(errors="replace"), branches)
        if result.ok:
            return
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
STALE = "gitswarm: stale:"  # the hub's guard saw the branch move before it even looked: a race


def parse_push(code: int, stdout: str, stderr: str, branches: list[str]) -> PushResult:
    """Read `git push --porcelain` (an --atomic push refused on the client side prints the human
    format on stderr instead): which branches were refused, and why."""
    remote = [ln[len("remote: "):].rstrip() for ln in stderr.splitlines() if ln.startswith("remote: ")]
    rejected = [ln.strip() for ln in (stdout + "\n" + stderr).splitlines()
                if not ln.startswith("remote: ") and ("[rejected]" in ln or "[remote rejected]" in ln)]
    if code == 0 and not rejected:
        return PushResult(True, set(), remote)
    raced: set[str] = set()
    for line in rejected:
        reason = line[line.rfind("("):]
        if "hook declined" not in reason and any(r in reason for r in _RACE):
            target = line.split("\t")[1].split(":")[-1] if "\t" in line else line.split(" -> ")[-1].split(" (")[0]
            raced.add(target.strip().removeprefix("refs/heads/"))
    for ln in remote:
        if ln.startswith(STALE):
            raced.add(ln[len(STALE):].split()[0].removeprefix("refs/heads/"))
    if not raced and any("atomic transaction failed" in ln for ln in rejected):
        raced = set(branches)  # the hub did not say which one moved
    lines = [ln for ln in remote if ln.strip()] + rejected
    if not rejected:
        lines += [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("remote: ")]
    return PushResult(False, raced, lines)


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


# ---------------------------------------------------------------- objects (pygit2)

def write_commit(repo, parent: str | None, files: dict[str, bytes], message: str,
                 author: tuple[str, str]) -> str:
    """Commit `files` (path -> content) on top of `parent` without a working tree; its id."""
    import pygit2

    base = repo[parent].tree if parent else None
    changes = {tuple(path.split("/")): repo.create_blob(data) for path, data in files.items()}
    tree = _update_tree(repo, base, changes)
    sig = pygit2.Signature(*author)
    return str(repo.create_commit(None, sig, sig, message, tree, [parent] if parent else []))


def graft_commit(repo, parent: str | None, folders: dict[str, str], message: str,
                 author: tuple[str, str]) -> str:
    """Commit on top of `parent` with each folder path in `folders` set to a whole tree (its id),
    without a working tree or reading what the trees hold; the new commit's id."""
    import pygit2

    base = repo[parent].tree if parent else None
    changes = {tuple(path.split("/")): (pygit2.Oid(hex=tree), pygit2.enums.FileMode.TREE)
               for path, tree in folders.items()}
    sig = pygit2.Signature(*author)
    return str(repo.create_commit(None, sig, sig, message, _update_tree(repo, base, changes),
                                  [parent] if parent else []))


def _update_tree(repo, tree, changes: dict[tuple[str, ...], object]):
    """`tree` with `changes` (path parts -> a blob id, or (id, mode)) written in; the new tree's id."""
    import pygit2

    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    below: dict[str, dict[tuple[str, ...], object]] = defaultdict(dict)
    for parts, oid in changes.items():
        if len(parts) == 1:
            builder.insert(parts[0], *(oid if isinstance(oid, tuple) else (oid, pygit2.enums.FileMode.BLOB)))
        else:
            below[parts[0]][parts[1:]] = oid
    for name, sub in below.items():
        subtree = tree[name] if tree is not None and name in tree else None
        builder.insert(name, _update_tree(repo, subtree, sub), pygit2.enums.FileMode.TREE)
    return builder.write()


def tree_files(repo, commit: str, folder: str) -> Iterator[tuple[str, str, bytes]]:
    """(path, blob id, content) of every file below `folder` in a commit."""
    tree = repo[commit].tree
    if folder not in tree:
        return
    stack = [(folder, tree[folder])]
    while stack:
        prefix, sub = stack.pop()
        for entry in sub:
            path = f"{prefix}/{entry.name}"
            if entry.type_str == "tree":
                stack.append((path, entry))
            else:
                yield path, str(entry.id), entry.data


def changed_files(repo, old: str, new: str) -> Iterator[tuple[str, bytes | None]]:
    """(path, new content or None) of every file that differs between two commits."""
    diff = repo.diff(repo[old].tree, repo[new].tree)
    for delta in diff.deltas:
        if delta.status_char() == "D":
            yield delta.old_file.path, None
        else:
            yield delta.new_file.path, repo[delta.new_file.id].data


def read_file(repo, commit: str, path: str) -> bytes | None:
    try:
        return (repo[commit].tree / path).data
    except KeyError:
        return None


def read_at_ref(git_dir: Path, ref: str, path: str) -> tuple[bool, bytes | None]:
    """(whether the repository at git_dir has `ref`, the file at `path` in its tree or None), read
    in place: nothing fetched."""
    import pygit2

    try:
        repo = open_repository(git_dir)
    except pygit2.GitError:  # no repository there
        return False, None
    try:
        tip = str(repo.lookup_reference(ref).peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError):  # no such ref, or it holds no commit
        repo.free()
        return False, None
    try:
        return True, read_file(repo, tip, path)
    finally:
        repo.free()


# ---------------------------------------------------------------- inside a hook (git CLI only)

def _diff_entries(raw: str, result: dict[str | None, list[tuple[str, str, str, str, str]]]) -> None:
    """Add the entries of `git diff-tree -r -z` output to `result`, under the commit line before
    them (None: no commit line, a diff of two trees)."""
    tokens = raw.split("\0")
    current, i = None, 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith(":"):
            _, new_mode, old_blob, new_blob, status = tok[1:].split(" ")
            result[current].append((status, old_blob, new_blob, tokens[i + 1], new_mode))
            i += 2
        else:
            if tok:
                current = tok
            i += 1


class HookRepo:
    """Reads the repository a hook runs in, pushed objects included (they sit in quarantine until
    pre-receive accepts; git's own commands find them through the variables the hook inherits).
    Uses the git command line only: importing pygit2 would cost a hook ~45 ms."""

    def __init__(self) -> None:
        self.env = dict(os.environ, LC_ALL="C")
        self._cat: subprocess.Popen[bytes] | None = None

    def ref(self, name: str) -> str | None:
        """A ref's object id, None when it does not exist. Asked of the `cat-file` process the
        check reads objects through anyway: no `git rev-parse` process of its own on every push."""
        header = self._ask(b"info " + name.encode())
        return header[0].decode() if len(header) >= 3 and header[1] != b"missing" else None

    def task_trailers(self, old: str, new: str) -> list[tuple[str, list[str]]]:
        """(commit, task ids of its Gitswarm-Task trailers) for each commit the update brings that
        has any: one `git log`, however long the pushed history."""
        limit = [f"^{old}"] if old != ZERO else ["--not", "--all"]
        text = out(["log", "--format=%H %(trailers:key=Gitswarm-Task,valueonly,separator=%x20)", new, *limit],
                   env=self.env)
        found = [ln.split() for ln in text.splitlines()]
        return [(parts[0], parts[1:]) for parts in found if len(parts) > 1]

    def updated_at(self, ref: str) -> float | None:
        """When the hub last moved a ref, on its own clock: the last entry of the ref's reflog."""
        return reflog_time(Path(self.env.get("GIT_DIR", ".")), ref)

    def is_ancestor(self, commit: str, of: str) -> bool:
        return run(["merge-base", "--is-ancestor", commit, of], env=self.env, check=False).returncode == 0

    def commits(self, old: str, new: str) -> list[tuple[str, list[str]]]:
        """(commit, parents) of each commit the update brings, oldest first. One commit on the
        old tip (a claim, a heartbeat: most pushes) is read through `cat-file`, without a
        `git rev-list` process of its own."""
        if old != ZERO and (self.info(new) or ("",))[0] == "commit":
            head = (self.read(new) or b"").split(b"\n\n", 1)[0].split(b"\n")
            parents = [ln[7:].decode() for ln in head if ln.startswith(b"parent ")]
            if parents == [old]:
                return [(new, parents)]
        limit = [f"^{old}"] if old != ZERO else ["--not", "--all"]
        text = out(["rev-list", "--reverse", "--parents", new, *limit], env=self.env)
        return [(parts[0], parts[1:]) for parts in (ln.split() for ln in text.splitlines())]

    def changes(self, commits: list[tuple[str, list[str]]]) -> dict[str, list[tuple[str, str, str, str, str]]]:
        """commit -> [(status, old blob, new blob, path, new mode)], from one `git diff-tree --stdin`."""
        feed = "".join(" ".join([c, *parents]) + "\n" for c, parents in commits)
        raw = run(["diff-tree", "--stdin", "--root", "-r", "-z", "--no-renames"],
                  input=feed.encode(), env=self.env).stdout.decode("utf-8", errors="surrogateescape")
        result: dict[str | None, list[tuple[str, str, str, str, str]]] = {c: [] for c, _ in commits}
        _diff_entries(raw, result)
        return result  # type: ignore[return-value]

    def diff(self, old: str | None, new: str) -> list[tuple[str, str, str, str, str]]:
        """[(status, old blob, new blob, path, new mode)] from tree-ish `old` (None: the empty tree)
        to `new`, whatever lies between: one `git diff-tree`."""
        raw = run(["diff-tree", "-r", "-z", "--no-renames", old or EMPTY_TREE, new],
                  env=self.env).stdout.decode("utf-8", errors="surrogateescape")
        result: dict[str | None, list[tuple[str, str, str, str, str]]] = {None: []}
        _diff_entries(raw, result)
        return result[None]

    def size(self, spec: str) -> int | None:
        """An object's size (`<sha>` or `<commit>:<path>`), None when missing."""
        found = self.info(spec)
        return found[1] if found else None

    def info(self, spec: str) -> tuple[str, int] | None:
        """An object's type and size, None when missing."""
        header = self._ask(b"info " + spec.encode())
        return (header[1].decode(), int(header[2])) if len(header) >= 3 and header[1] != b"missing" else None

    def read(self, spec: str) -> bytes | None:
        """An object's content, None when missing."""
        header = self._ask(b"contents " + spec.encode())
        if len(header) < 3 or header[1] == b"missing":
            return None
        assert self._cat is not None and self._cat.stdout is not None
        data = self._cat.stdout.read(int(header[2]))
        self._cat.stdout.read(1)
        return data

    def tree(self, sha: str, most: int) -> list[tuple[str, str, str]] | None:
        """(mode, name, id) of a tree's entries (one level); None when `sha` is not a tree or holds
        more than `most` entries (its size tells before it is read: an entry takes 22+ bytes)."""
        kind, size = self.info(sha) or ("missing", 0)
        if kind != "tree" or size > most * (22 + 255 + 40):
            return None
        raw, entries, i = self.read(sha) or b"", [], 0
        width = len(sha) // 2  # 20 bytes an id (sha1), 32 (sha256)
        while i < len(raw):
            space, nul = raw.index(b" ", i), raw.index(b"\0", i)
            mode = raw[i:space].decode()
            entries.append((mode.rjust(6, "0"), raw[space + 1:nul].decode("utf-8", "surrogateescape"),
                            raw[nul + 1:nul + 1 + width].hex()))
            i = nul + 1 + width
            if len(entries) > most:
                return None
        return entries

    def _ask(self, command: bytes) -> list[bytes]:
        if self._cat is None:  # a long-lived conversation, not a run to its end: not gitswarm/proc.py's job
            self._cat = subprocess.Popen(["git", "cat-file", "--batch-command"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=self.env)
        assert self._cat.stdin and self._cat.stdout
        self._cat.stdin.write(command + b"\n")
        self._cat.stdin.flush()
        return self._cat.stdout.readline().split()

    def close(self) -> None:
        if self._cat is not None:
            self._cat.stdin.close()  # type: ignore[union-attr]
            self._cat.wait()
            self._cat = None


def reflog_time(git_dir: Path, ref: str) -> float | None:
    """The time of a ref's last reflog entry (`<old> <new> <who> <email> <unix time> <tz>\t<msg>`),
    None without one. Reads the file's tail only: reflogs grow."""
    path = git_dir / "logs" / ref
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    for line in reversed(lines):
        head = line.split(b"\t", 1)[0].rsplit(b" ", 2)
        if len(head) == 3 and head[1].isdigit():
            return float(head[1])
    return None


# ---------------------------------------------------------------- what agents see of main

def list_files(repo, commit: str, limit: int = 400) -> list[str]:
    """Paths of the files at a commit, at most `limit` (a map of the repository)."""
    paths: list[str] = []
    stack = [("", repo[commit].tree)]
    while stack and len(paths) < limit:
        prefix, tree = stack.pop()
        for entry in tree:
            path = f"{prefix}{entry.name}"
            if entry.type_str == "tree":
                stack.append((path + "/", entry))
            else:
                paths.append(path)
    return sorted(paths[:limit])


def log_lines(repo, commit: str | None, limit: int = 20) -> list[str]:
    """`<short id> <subject>` of the last commits up to `commit`, newest first."""
    if commit is None:
        return []
    import pygit2

    lines = []
    for c in repo.walk(commit, pygit2.enums.SortMode.TOPOLOGICAL):
        lines.append(f"{str(c.id)[:10]} {c.message.splitlines()[0] if c.message else ''}")
        if len(lines) >= limit:
            break
    return lines


def changed_paths(repo, old: str | None, new: str) -> list[str]:
    """Paths that differ between two commits (all of `new`'s when old is None)."""
    if old is None:
        return list_files(repo, new, limit=1_000_000)
    return [d.new_file.path if d.status_char() != "D" else d.old_file.path
            for d in repo.diff(repo[old].tree, repo[new].tree).deltas]


def patch(repo, old: str, new: str, limit: int = 20_000) -> str:
    """The unified diff between two commits, as text, its end cut past `limit` characters."""
    text = repo.diff(repo[old].tree, repo[new].tree).patch or ""
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} characters cut ...]\n"
