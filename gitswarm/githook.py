"""Reading the repository a hook runs in, pushed objects included: the hub's guard (gitswarm/guard.py)
reads every push through it. Part of the git layer. Two readers with one interface: HookRepo,
through the git command line (gitswarm/git.py), for a hook's own process, where importing pygit2
would cost ~45 ms; LibRepo, through libgit2, for a process that has pygit2 loaded already (the
resident guard, gitswarm/guardserver.py), where a git process per read would be the cost. reader()
picks one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import gittrailers
from .git import EMPTY_TREE, ZERO, open_repository, out, run
from .gittree import tree_changes
from .gitrefs import reflog_time
from .names import REFS


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


_HEX = frozenset("0123456789abcdef")  # an object id's characters, as git writes them
_OPENED: dict[str, object] = {}  # hub -> its repository, opened before the guard forks a child per push


def preopen(git_dir: str) -> None:
    """Open the hub's repository now, in the resident guard, for the LibRepos of each child it
    forks (each takes one push, on its own copy; a pre-receive adds its quarantine to it): ~1 ms
    less a push. libgit2 reads refs and new packs anew as it needs them (it checks packed-refs'
    and the pack folder's stamps)."""
    _OPENED[os.path.realpath(git_dir)] = open_repository(Path(git_dir))


def reader() -> "HookRepo":
    """A reader for this process: LibRepo when pygit2 is loaded already (its import, the only
    reason not to use it, is paid), else HookRepo."""
    return LibRepo() if "pygit2" in sys.modules else HookRepo()


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
        """(commit, task ids of its Gitswarm-Task trailers, as git reads them) for each commit the
        update brings that has any, newest first: read here when every message is plain enough
        and no config changes git's reading (gitswarm/gittrailers.py), else one `git log`,
        however long the pushed history."""
        if gittrailers.config_plain(self.env):
            found = []
            for commit, _ in reversed(self.commits(old, new)):
                ids = gittrailers.values(self.read(commit) or b"", "Gitswarm-Task")
                if ids is None:
                    break
                if ids:
                    found.append((commit, ids))
            else:
                return found
        limit = [f"^{old}"] if old != ZERO else ["--not", "--all"]
        text = run(["log", "--format=%H %(trailers:key=Gitswarm-Task,valueonly,separator=%x20)", new, *limit],
                   env=self.env).stdout.decode("utf-8", "replace")  # not UTF-8: names no task there is
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
        if old != ZERO and self.parents(new) == [old]:
            return [(new, [old])]
        limit = [f"^{old}"] if old != ZERO else ["--not", "--all"]
        text = out(["rev-list", "--reverse", "--parents", new, *limit], env=self.env)
        return [(parts[0], parts[1:]) for parts in (ln.split() for ln in text.splitlines())]

    def parents(self, commit: str) -> list[str] | None:
        """A commit's parents, read through `cat-file`; None when `commit` is not a commit."""
        if (self.info(commit) or ("",))[0] != "commit":
            return None
        head = (self.read(commit) or b"").split(b"\n\n", 1)[0].split(b"\n")
        return [ln[7:].decode() for ln in head if ln.startswith(b"parent ")]

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


class LibRepo(HookRepo):
    """HookRepo's reads through libgit2, in this process: refs, objects, ancestry, commit walks and
    tree diffs without a git process (the reflog, and trailers git might read otherwise than
    plainly, are still read as HookRepo reads them). The quarantine's objects (pre-receive) are
    read through an alternate, the folder git names in GIT_OBJECT_DIRECTORY. Diffs as `git
    diff-tree -r --no-renames` gives them: a type change is one entry (T), a merge given with its
    parents has none.
    tests/test_githook.py holds both readers to the same answers."""

    KINDS = {1: "commit", 2: "tree", 3: "blob", 4: "tag"}

    def __init__(self) -> None:
        super().__init__()
        import pygit2

        self._git, self._repo, self._own = pygit2, None, False

    @property
    def repo(self):
        """The repository, opened on first use (a push that reads nothing, as a board push's
        pre-receive, opens none), or the one preopen() opened for this hub (shared, never freed here)."""
        if self._repo is None:
            git_dir = self.env.get("GIT_DIR", ".")
            self._repo = _OPENED.get(os.path.realpath(git_dir))
            if self._repo is None:
                self._repo, self._own = open_repository(Path(git_dir)), True
            quarantine = self.env.get("GIT_OBJECT_DIRECTORY")
            if quarantine and os.path.realpath(quarantine) != os.path.realpath(os.path.join(self._repo.path, "objects")):
                self._repo.odb.add_disk_alternate(os.path.abspath(quarantine))
        return self._repo

    def _id(self, spec: str):
        """The object id `spec` names (an id, `<commit>:<path>`, a ref), or None; no object is read
        whole (a blob's size is asked before it is read)."""
        git = self._git
        try:
            if len(spec) in (40, 64) and _HEX.issuperset(spec):
                oid = git.Oid(hex=spec)
                return oid if self.repo.odb.exists(oid) else None
            if ":" in spec:
                rev, path = spec.split(":", 1)
                return self.repo.revparse_single(rev).peel(git.Tree)[path].id
            return self.repo.lookup_reference(spec).resolve().target if spec.startswith(REFS) \
                else self.repo.revparse_single(spec).id
        except (KeyError, ValueError, TypeError, git.GitError):
            return None

    def ref(self, name: str) -> str | None:
        oid = self._id(name)
        return str(oid) if oid is not None and self.repo.odb.exists(oid) else None

    def info(self, spec: str) -> tuple[str, int] | None:
        oid = self._id(spec)
        if oid is None:
            return None
        try:
            kind, size = self.repo.odb.read_header(oid)
        except (KeyError, self._git.GitError):
            return None
        return self.KINDS.get(int(kind), "unknown"), size

    def read(self, spec: str) -> bytes | None:
        oid = self._id(spec)
        try:
            return None if oid is None else self.repo.odb.read(oid)[1]
        except (KeyError, self._git.GitError):
            return None

    def is_ancestor(self, commit: str, of: str) -> bool:
        git = self._git
        try:
            a, b = (self.repo[self._id(x)].peel(git.Commit).id for x in (commit, of))  # a tag names its commit
        except (KeyError, ValueError, TypeError, git.GitError, git.InvalidSpecError):
            return False
        return a == b or self.repo.descendant_of(b, a)

    def commits(self, old: str, new: str) -> list[tuple[str, list[str]]]:
        if old != ZERO and self.parents(new) == [old]:
            return [(new, [old])]
        git = self._git
        walker = self.repo.walk(new, git.enums.SortMode.TOPOLOGICAL | git.enums.SortMode.REVERSE)
        if old != ZERO:
            walker.hide(old)
        else:  # `--not --all`: what no ref (nor HEAD) reaches
            for name in [*self.repo.raw_listall_references(), b"HEAD"]:
                try:
                    walker.hide(self.repo.lookup_reference(name.decode("utf-8", "surrogateescape")).resolve()
                                .peel(git.Commit).id)
                except (KeyError, ValueError, git.GitError, git.InvalidSpecError):
                    pass  # a ref to a blob or a tree, or to nothing: hides no commit
        return [(str(c.id), [str(p) for p in c.parent_ids]) for c in walker]

    def changes(self, commits: list[tuple[str, list[str]]]) -> dict[str, list[tuple[str, str, str, str, str]]]:
        return {c: [] if len(parents) > 1 else self.diff(parents[0] if parents else None, c)
                for c, parents in commits}

    def diff(self, old: str | None, new: str) -> list[tuple[str, str, str, str, str]]:
        trees = [self.repo[x].peel(self._git.Tree).id if x else None for x in (old, new)]
        return [(d.status, d.old_id, d.new_id, d.path, f"{d.new_mode:06o}") for d in tree_changes(self.repo, *trees)]

    def close(self) -> None:
        super().close()
        if self._repo is not None and self._own:
            self._repo.free()
        self._repo = None
