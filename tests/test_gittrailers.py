"""The guard reads which tasks a commit on main names as git reads its trailers. gittrailers reads
them without a `git log` only where git's reading cannot differ: held here to git's own answers
(the `git log` the guard ran for every landing before) on messages built to break it, by hand and
generated, through both hook readers; and config that changes git's reading leaves it to git."""

from __future__ import annotations

import random
from pathlib import Path

import pygit2
import pytest

from gitswarm import gittrailers
from gitswarm.git import ZERO
from gitswarm.githook import HookRepo, LibRepo

from conftest import sh

KEY = "Gitswarm-Task"
WORKER = "Work on t-1\n\nA summary: of what was done.\n\nGitswarm-Task: t-1\nGitswarm-Worker: w1\n"
BY_HAND = [
    WORKER,  # what gitswarm's workers write: read here
    "Two tasks\n\nGitswarm-Task: t-1\nGitswarm-Task: t-2 t-3\n",
    "change 3\n", "change 3", "Fix the thing.\n\nBecause it broke.\n",
    "Gitswarm-Task: t-1\n",  # the title: no trailer
    "x\n\ngitswarm-task: t-1\nGITSWARM-TASK: t-2\n",  # git's key matches in any case
    "x\n\nGitswarm-Task:t-1\n", "x\n\nGitswarm-Task : t-1\n", "x\n\nGitswarm-Task:\tt-1\n",
    "x\n\nGitswarm-Task: t-1 \n", "x\n\nGitswarm-Task: t-1\n continued t-2\n", "x\n\nGitswarm-Task: t-1\r\n",
    "x\n\nGitswarm-Task: t-1\nnot a trailer\n",
    "x\n\nGitswarm-Task: t-1\nSigned-off-by: A <a@x>\nnot a trailer\nnor this\n",  # git's own: a quarter will do
    "x\n\nGitswarm-Task: t-1\n(cherry picked from commit 1234)\nfree text\n",
    "x\n\nGitswarm-Task: t-1\n# a comment\n", "x\n\nGitswarm-Task: t-1\n\n# a comment\n",
    "x\n\nGitswarm-Task: t-1\n---\ndiff --git a/f b/f\n", "x\n\nGitswarm-Task: t-1\n--- a\n",
    "x\n\nGitswarm-Task: t-1\n# ------------------------ >8 ------------------------\nGitswarm-Task: t-2\n",
    "x\n\nGitswarm-Task: t-1\n\n", "x\n\nGitswarm-Task: t-1\n \n", "x\n \nGitswarm-Task: t-1\n",
    "x\n\nGitswarm-Task: t-1\n\nplain words\n", "x\n\nplain words\n\nGitswarm-Task: t-1\n",
    "x\n\nGitswarm-Tasks: t-1\nGitswarm-Task-X: t-2\n", "x\n\n-Gitswarm-Task: t-1\n",
    "x\n\nGitswarm-Task: t-1:t-2\n", "x\n\nGitswarm-Task: t-\u00e9\n", "x\n\nGitswarm-Task: t-1\tt-2\n",
    "#x\n\nGitswarm-Task: t-1\n", "x\ny\n\nGitswarm-Task: t-1\n", "", "\n", "\n\nGitswarm-Task: t-1\n",
    "x\n\nGitswarm-Task: t-1\n\n\n\nGitswarm-Task: t-2\n", "x\n\nGitswarm-Task: t-1\n\n---\nplain\n",
    "Fix \u00e9\n\nA body with \u00e9 and\ta tab\n  indented code: x\n\nGitswarm-Task: t-1\n",  # read here
    "x\n\n  indented: x\n\tGitswarm-Task: t-1\n", "x\n\nGitswarm-Task: t-1\n  more\n",
    "x\n\nsome: thing\n\tGitswarm-Task: t-2\n", "x\n\nGitswarm-Task \t: t-1\n",
    "x\n\nNote: \u00e9\nGitswarm-Task: t-1\n",
    "x\n\n\u00e9: y\nGitswarm-Task: t-1\n", "x\n \t\nGitswarm-Task: t-1\n", "x\n\nGitswarm-Task: t-1\u00a0t-2\n",
    "x\n\nGitswarm-Task: t-\udcff\n".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape"),
]
LINES = ["Gitswarm-Task: t-1", "Gitswarm-Task: t-2 t-3", "gitswarm-task: t-4", "Gitswarm-Task:t-5",
         "Gitswarm-Task : t-6", "Gitswarm-Task: t-7 ", " t-8", "\tt-9", "Signed-off-by: A <a@x>",
         "(cherry picked from commit abc)", "plain words", "Fixes: #12", "a: b", "# comment", "---", "--- x",
         "", " ", "Gitswarm-Worker: w1", "Gitswarm-Task: t-10\r", "Key#: v", "Gitswarm-Task:", "Gitswarm-Task: \u00e9",
         "  indented: x", "\tGitswarm-Task: t-11", "caf\u00e9 body", "Gitswarm-Task \t: t-12"]
PLAIN_LINES = ["Gitswarm-Task: t-1", "Gitswarm-Task: t-2 t-3", "gitswarm-task: t-4", "Gitswarm-Worker: w1",
               "Signed-off-by: A <a@x>", "plain words", "a: b", "Fixes: #12", "Words: with: colons", "(cherry",
               "Gitswarm-Task: t-5  t-6", "x:y"]


def generated(count: int, lines: list[str], tricky: bool, seed: int = 17) -> list[str]:
    """Messages of a title and up to three paragraphs of `lines`, ending in 0-1 newlines (0-2, and
    titles that are comments too, when `tricky`)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts = [rng.choice(["title", "t: x", "# t", ""] if tricky else ["title", "t: x"])]
        for _ in range(rng.randint(0, 3)):
            parts.append("\n".join(rng.choice(lines) for _ in range(rng.randint(1, 4))))
        out.append("\n\n".join(parts) + "\n" * rng.randint(0, 2 if tricky else 1))
    return out


def raw_commit(tree: str, parent: str | None, message: bytes, encoding: str | None = None) -> bytes:
    head = f"tree {tree}\n" + (f"parent {parent}\n" if parent else "") + \
        "author A <a@x> 1700000000 +0000\ncommitter A <a@x> 1700000000 +0000\n" + \
        (f"encoding {encoding}\n" if encoding else "")
    return head.encode() + b"\n" + message


@pytest.fixture
def chain(tmp_path: Path) -> tuple[Path, list[tuple[str, str, bytes]]]:
    """A bare repository holding one commit for each message (by hand, generated, some in Latin-1
    and EBCDIC with a header saying so), each the child of the one before: (parent, commit, raw
    object)."""
    bare = tmp_path / "t.git"
    sh("git", "init", "-q", "--bare", str(bare))
    repo = pygit2.Repository(str(bare))
    tree = str(repo.TreeBuilder().write())
    texts = BY_HAND + generated(200, LINES, True) + generated(200, PLAIN_LINES, False)
    messages = [(m.encode("utf-8", "surrogateescape"), None) for m in texts]
    messages += [("x\n\nGitswarm-Task: t-\u00e9\n".encode("latin-1"), "ISO-8859-1"),
                 (b"x\n\nGitswarm-Task: t-1\n", "ISO-8859-1"),  # git reads these bytes as EBCDIC: no trailer
                 (b"x\n\nGitswarm-Task: t-1\n", "IBM037"), ("x\n\nGitswarm-Task: t-2\n".encode("cp037"), "IBM037")]
    commits, parent = [], None
    for message, encoding in messages:
        raw = raw_commit(tree, parent, message, encoding)
        sha = str(repo.odb.write(pygit2.enums.ObjectType.COMMIT, raw))
        commits.append((parent or ZERO, sha, raw))
        parent = sha
    repo.free()
    return bare, commits


def test_read_here_as_git_reads(chain, monkeypatch):
    bare, commits = chain
    monkeypatch.setenv("GIT_DIR", str(bare))
    here, lib, by_git = HookRepo(), LibRepo(), HookRepo()
    by_git.env["GIT_CONFIG_COUNT"] = "0"  # config from the environment: the reading is git's
    assert gittrailers.config_plain(here.env) and not gittrailers.config_plain(by_git.env)
    try:
        for parent, sha, raw in commits:
            want = by_git.task_trailers(parent, sha)
            assert here.task_trailers(parent, sha) == want, raw
            assert lib.task_trailers(parent, sha) == want, raw
    finally:
        for r in (here, lib, by_git):
            r.close()
    read = [gittrailers.values(raw, KEY) for _, _, raw in commits]
    assert read[0] == ["t-1"] and read[1] == ["t-1", "t-2", "t-3"]  # the workers' own: no git log
    assert read[BY_HAND.index(next(m for m in BY_HAND if m.startswith("Fix \u00e9")))] == ["t-1"]
    assert sum(r is not None for r in read) > len(read) // 4 and sum(r is None for r in read) > len(read) // 4
    assert sum(bool(r) for r in read) > 20  # and many of those read here name tasks


def test_a_chain_as_git_reads_it(chain, monkeypatch):
    """A push of many commits: one answer for them all, the same either way."""
    bare, commits = chain
    monkeypatch.setenv("GIT_DIR", str(bare))
    plain = [c for c in commits if gittrailers.values(c[2], KEY) is not None]
    here, by_git = LibRepo(), HookRepo()
    by_git.env["GIT_CONFIG_COUNT"] = "0"
    try:
        for old, new in [(commits[0][1], commits[-1][1]), (commits[0][1], plain[-1][1]), (ZERO, commits[5][1])]:
            assert sorted(here.task_trailers(old, new)) == sorted(by_git.task_trailers(old, new))
        assert here.task_trailers(commits[0][1], commits[1][1]) == [(commits[1][1], ["t-1", "t-2", "t-3"])]
    finally:
        here.close()
        by_git.close()


@pytest.mark.parametrize("where", ["the hub's config", "the user's config", "an include", "the environment"])
def test_config_that_changes_gits_reading_leaves_it_to_git(tmp_path, monkeypatch, where):
    """`trailer.<name>.key` makes git read `Fix: t-9` as a Gitswarm-Task trailer: wherever git would
    find it, the guard reads the trailers through git and names t-9 too."""
    bare = tmp_path / "t.git"
    sh("git", "init", "-q", "--bare", str(bare))
    repo = pygit2.Repository(str(bare))
    tree = str(repo.TreeBuilder().write())
    sha = str(repo.odb.write(pygit2.enums.ObjectType.COMMIT, raw_commit(tree, None, b"x\n\nFix: t-9\n")))
    repo.free()
    monkeypatch.setenv("GIT_DIR", str(bare))
    setting = '[trailer "fix"]\n\tkey = Gitswarm-Task\n'
    home = Path(str(tmp_path / "home"))
    if where == "the hub's config":
        with open(bare / "config", "a") as f:
            f.write(setting)
    elif where == "the user's config":
        home.mkdir()
        (home / ".gitconfig").write_text(setting)
        monkeypatch.setenv("HOME", str(home))
    elif where == "an include":
        (tmp_path / "more.inc").write_text(setting)
        sh("git", "config", "include.path", str(tmp_path / "more.inc"), cwd=bare)
    else:
        monkeypatch.setenv("GIT_CONFIG_COUNT", "2")
        for i, (k, v) in enumerate([("trailer.fix.key", "Gitswarm-Task"), ("user.name", "x")]):
            monkeypatch.setenv(f"GIT_CONFIG_KEY_{i}", k)
            monkeypatch.setenv(f"GIT_CONFIG_VALUE_{i}", v)
    assert gittrailers.values(raw_commit(tree, None, b"x\n\nFix: t-9\n"), KEY) == []  # plainly: no task
    for reader in (HookRepo(), LibRepo()):
        assert not gittrailers.config_plain(reader.env)
        try:
            assert reader.task_trailers(ZERO, sha) == [(sha, ["t-9"])]  # git's reading
        finally:
            reader.close()
