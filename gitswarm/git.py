"""All git access: pygit2 for objects, the `git` command line for everything that crosses to another
repository (fetch, push) and inside hooks. This module runs git and reads and writes objects; modules
beside it hold the rest of the git layer: gitswarm/gitmirror.py (the local mirror of a hub, and
pushes), gitswarm/githook.py (reading the repository a hook runs in), gitswarm/gitrefs.py (moving
refs all or none), gitswarm/gittree.py (comparing two trees) and gitswarm/gittrailers.py.
The names of the refs a hub holds are in gitswarm/names.py.

Never push with pygit2 to a local path: libgit2's local transport skips the server's hooks and its
receive.* settings, and it lost acknowledged updates under 8 concurrent pushers. Pushes go
through `git push`, so that receive-pack's compare-and-swap, the server's settings and its hooks
always run.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Iterator

from .errors import GitError, HubUnreachable
from .gittree import tree_changes
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


STALE = "gitswarm: stale:"  # the hub's guard saw the branch move before it even looked: a race
DROPPED = "gitswarm: dropped"  # `<DROPPED> <commit> <why>`: a commit the hub left out of a rebased push
APPLIED = "gitswarm: applied"  # `<APPLIED> <ref> <commit>`: the tip the hub made of a rebased push (applier.py)


def bound_libgit2_memory() -> None:
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


def tree_of(repo, commit: str) -> str:
    """The id of a commit's tree; GitError when `commit` is no commit."""
    return str(_commit(repo, commit).tree_id)


def commit_tree(repo, commit: str) -> str:
    """A tree that keeps a commit whole, without a ref to it: `tree`, the commit's own tree (its
    content, diffable as is), and `commit`, a blob of the raw commit object's bytes
    (`git hash-object -t commit -w --stdin` makes the very same commit again); the tree's id.
    GitError when `commit` is no commit."""
    import pygit2

    c = _commit(repo, commit)
    builder = repo.TreeBuilder()
    builder.insert("commit", repo.create_blob(c.read_raw()), pygit2.enums.FileMode.BLOB)
    builder.insert("tree", c.tree_id, pygit2.enums.FileMode.TREE)
    return str(builder.write())


def _commit(repo, sha: str):
    """The commit `sha` names; GitError when the object is missing or of another type."""
    import pygit2

    obj = repo.get(sha)
    if not isinstance(obj, pygit2.Commit):
        raise GitError(f"{sha} is {'missing' if obj is None else 'a ' + obj.type_str}, not a commit")
    return obj


class Conflict(Exception):
    """A commit cannot be replayed: a file it changes is not, on the new parent, what it changed."""

    def __init__(self, path: str, reason: str = "changed since the commit's parent"):
        super().__init__(f"{path}: {reason}")
        self.path = path


def replay_commit(repo, commit: str, onto: str, rewrite=None) -> str:
    """The commit made of `commit` on `onto`: each regular file it adds or changes against its one
    parent written into `onto`'s tree, same author, committer and message. Conflict when `onto`
    holds another version of such a file than that parent did (a compare-and-swap per file, not a
    merge of contents), and when the commit is not of that simple shape (a merge, a deletion, a
    mode other than a regular file, a signature or an encoding a replay would lose). `rewrite(path,
    data)`: new content for a file the commit writes, or None to keep it."""
    import pygit2

    c = repo[commit]
    if len(c.parent_ids) != 1:
        raise Conflict(commit, "a merge or a root commit is not replayed")
    if c.message_encoding or b"\ngpgsig" in c.read_raw():
        raise Conflict(commit, "a commit with an encoding or a signature is not replayed")
    base, target = c.parents[0].tree, repo[onto].peel(pygit2.Commit).tree
    changes: dict[tuple[str, ...], object] = {}
    for delta in tree_changes(repo, base.id, c.tree_id):
        path = delta.path
        if delta.status not in "AM" or delta.new_mode != pygit2.enums.FileMode.BLOB:
            raise Conflict(path, "only added or changed regular files are replayed")
        if _entry(target, path) != _entry(base, path):
            raise Conflict(path)
        new = rewrite(path, repo[delta.new_id].data) if rewrite else None
        changes[tuple(path.split("/"))] = pygit2.Oid(hex=delta.new_id) if new is None else repo.create_blob(new)
    tree = _update_tree(repo, target, changes)
    return str(repo.create_commit(None, c.author, c.committer, c.message, tree, [pygit2.Oid(hex=onto)]))


def replay_onto(repo, commit: str, onto: str) -> tuple[str, dict[str, str]] | None:
    """Replay the commits of `commit` since its merge base with `onto` on top of `onto`, as `git
    rebase` does (a three-way merge of trees per commit), keeping their messages and authors:
    (the new tip, {old commit: its replayed commit}), or None at a conflict or a merge commit."""
    import pygit2

    base = repo.merge_base(commit, onto)
    chain = []
    c = repo[commit]
    while base is None or c.id != base:
        if len(c.parents) > 1:
            return None
        chain.append(c)
        if not c.parents:  # a root: its change is all of its tree
            break
        c = c.parents[0]
    tip = repo[onto]
    replayed: dict[str, str] = {}
    for c in reversed(chain):
        ancestor = c.parents[0].tree if c.parents else repo[repo.TreeBuilder().write()]
        index = repo.merge_trees(ancestor, tip.tree, c.tree)
        if index.conflicts is not None:
            return None
        committer = pygit2.Signature(c.committer.name, c.committer.email)
        tip = repo[repo.create_commit(None, c.author, committer, c.message, index.write_tree(repo), [tip.id])]
        replayed[str(c.id)] = str(tip.id)
    return str(tip.id), replayed


def _entry(tree, path: str) -> tuple[str, int] | None:
    """(id, mode) of the entry at `path` of a tree; None when there is none."""
    try:
        entry = tree[path]
    except KeyError:
        return None
    return str(entry.id), entry.filemode


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
    for delta in tree_changes(repo, repo[old].tree_id, repo[new].tree_id):
        yield delta.path, None if delta.status == "D" else repo[delta.new_id].data


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
    return [d.path for d in tree_changes(repo, repo[old].tree_id, repo[new].tree_id)]


def patch(repo, old: str, new: str, limit: int = 20_000) -> str:
    """The unified diff between two commits, as text, its end cut past `limit` characters."""
    text = repo.diff(repo[old].tree, repo[new].tree).patch or ""
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} characters cut ...]\n"
