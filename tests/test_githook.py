"""The two readers of a hook's repository (gitswarm/githook.py) give the same answers: HookRepo
through git's command line, LibRepo through libgit2 (the resident guard's). The guard's checks read
every push through one of them, so a difference would be a check that passes one way and not the
other. Real repositories, real pushes; the quarantine read from a real pre-receive hook."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from gitswarm.git import ZERO
from gitswarm.githook import HookRepo, LibRepo

from conftest import sh


def git(repo: Path, *args: str, input: str | None = None) -> str:
    return sh("git", *args, cwd=repo, input=input).stdout.strip()


def commit(repo: Path, message: str, date: int) -> str:
    env = dict(os.environ, GIT_AUTHOR_DATE=f"@{date} +0000", GIT_COMMITTER_DATE=f"@{date} +0000")
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "--allow-empty", "-m", message, cwd=repo, env=env)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A bare repository whose history holds each kind of change a diff can show: added, deleted,
    changed and mode-changed files, a file become a link and a folder, a gitlink, a name that is not
    UTF-8, a merge, an annotated tag and a ref to a blob."""
    work = tmp_path / "work"
    sh("git", "init", "-q", str(work))
    (work / "d").mkdir()
    (work / "a.txt").write_text("a\n")
    (work / "d" / "g.yaml").write_text("g: 1\n")
    (work / "h").write_text("h\n")
    os.symlink("a.txt", work / "l")
    (work / os.fsdecode(b"n\xffm")).write_text("not utf-8\n")
    c = {"root": commit(work, "root", 1_700_000_000)}
    (work / "a.txt").write_text("a2\n")
    (work / "a.txt").chmod(0o755)
    (work / "h").unlink()
    (work / "h").mkdir()
    (work / "h" / "i").write_text("i\n")
    (work / "l").unlink()
    (work / "l").write_text("was a link\n")
    (work / "d" / "g.yaml").unlink()
    git(work, "update-index", "--add", "--cacheinfo", f"160000,{c['root']},sub")
    c["second"] = commit(work, "second\n\nGitswarm-Task: t-1", 1_700_000_100)
    git(work, "checkout", "-q", "-b", "side", c["root"])
    (work / "side.txt").write_text("side\n")
    c["side"] = commit(work, "side", 1_700_000_200)
    git(work, "checkout", "-q", "main")
    git(work, "merge", "-q", "--no-ff", "-m", "merge", "side")
    c["merge"] = git(work, "rev-parse", "HEAD")
    (work / "after.txt").write_text("after\n")
    c["after"] = commit(work, "after", 1_700_000_300)
    git(work, "tag", "-a", "-m", "a tag", "v1", c["second"])
    c["tag"] = git(work, "rev-parse", "v1")
    c["blob"] = git(work, "rev-parse", f"{c['root']}:a.txt")
    c["tree"] = git(work, "rev-parse", f"{c['root']}^{{tree}}")
    bare = tmp_path / "repo.git"
    sh("git", "clone", "-q", "--bare", str(work), str(bare))
    git(bare, "update-ref", "refs/blobs/one", c["blob"])
    git(bare, "update-ref", "refs/heads/old", c["root"])
    return bare, c


def answers(repo, c: dict[str, str]) -> dict[str, object]:
    """Every read the guard makes, on every object of `history`."""
    out: dict[str, object] = {}
    specs = list(c.values()) + [f"{c['second']}:{p}" for p in ("a.txt", "h", "h/i", "sub", "l", "d/g.yaml", "nothing")] \
        + ["refs/heads/main", "refs/heads/side", "refs/tags/v1", "refs/blobs/one", "refs/heads/none", "1" * 40,
           f"{c['blob']}:x", f"{c['root']}:d"]
    for spec in specs:
        out[f"ref {spec}"] = repo.ref(spec) if spec.startswith("refs/") else None
        out[f"info {spec}"] = repo.info(spec)
        out[f"size {spec}"] = repo.size(spec)
        out[f"read {spec}"] = (repo.read(spec) or b"").hex()
        out[f"parents {spec}"] = repo.parents(spec)
        out[f"tree {spec}"] = repo.tree(spec, 100)
    out["tree too many"] = repo.tree(c["tree"], 2)
    for a in c.values():
        for b in (c["root"], c["second"], c["merge"], c["after"], c["tree"], "1" * 40):
            out[f"is_ancestor {a} {b}"] = repo.is_ancestor(a, b)
    for old, new in [(c["root"], c["second"]), (c["second"], c["after"]), (c["side"], c["after"]),
                     (c["root"], c["after"]), (ZERO, c["after"])]:
        out[f"commits {old} {new}"] = repo.commits(old, new)
    every = repo.commits(c["root"], c["after"]) + [(c["root"], [])]
    out["changes"] = repo.changes(every)
    out["changes first parent"] = repo.changes([(x, parents[:1]) for x, parents in every])
    for old, new in [(None, c["second"]), (c["root"], c["second"]), (c["second"], c["root"]), (c["root"], c["after"]),
                     (c["tree"], c["second"]), (None, c["tree"])]:
        out[f"diff {old} {new}"] = repo.diff(old, new)
    out["trailers"] = repo.task_trailers(c["root"], c["after"])
    return out


def test_both_readers_answer_alike(history, monkeypatch):
    bare, c = history
    monkeypatch.setenv("GIT_DIR", str(bare))
    one, two = HookRepo(), LibRepo()
    try:
        got, want = answers(two, c), answers(one, c)
    finally:
        one.close()
        two.close()
    assert got == want
    assert want[f"diff {c['root']} {c['second']}"], "the history shows changes"  # the test can fail
    statuses = {entry[0] for entry in want[f"diff {c['root']} {c['second']}"]}  # type: ignore[union-attr]
    assert statuses == {"A", "D", "M", "T"}
    assert want["changes"][c["merge"]] == [] and want["changes first parent"][c["merge"]]  # type: ignore[index]


def test_a_hook_reads_the_quarantine_alike(hub_like):
    """In a real pre-receive, the pushed objects sit in quarantine: both readers see them."""
    bare, clone = hub_like
    (clone / "new.txt").write_text("only in the quarantine\n")
    new = commit(clone, "pushed", 1_700_000_400)
    proc = sh("git", "push", "origin", "HEAD:refs/heads/main", cwd=clone, check=False)
    assert proc.returncode == 1, proc.stderr  # the hook refuses the push after answering
    line = next(ln for ln in proc.stderr.splitlines() if "ANSWERS " in ln)
    got = json.loads(line.split("ANSWERS ", 1)[1])
    assert got["lib"] == got["cli"]
    assert got["cli"]["info"][0] == "commit" and got["cli"]["commits"][0][0] == new
    assert got["cli"]["read"] == "only in the quarantine\n"
    assert [d[0] for d in got["cli"]["diff"]] == ["A"]
    assert sh("git", "cat-file", "-e", new, cwd=bare, check=False).returncode != 0  # it never left quarantine


HOOK = """#!/bin/sh
exec {python} -c '
import json, sys
sys.path.insert(0, "{root}")
from gitswarm.githook import HookRepo, LibRepo
old, new, ref = sys.stdin.readline().split()
def read(repo):
    try:
        return {{"info": repo.info(new), "commits": repo.commits(old, new), "diff": repo.diff(old, new),
                "read": (repo.read(new + ":new.txt") or b"").decode(), "tip": repo.ref(ref)}}
    finally:
        repo.close()
print("ANSWERS " + json.dumps({{"cli": read(HookRepo()), "lib": read(LibRepo())}}), file=sys.stderr)
sys.exit(1)
'
"""


@pytest.fixture
def hub_like(tmp_path: Path) -> tuple[Path, Path]:
    """A bare repository whose pre-receive answers with both readers' reads of the pushed commit,
    and a clone that pushed a first commit to it."""
    bare, clone = tmp_path / "q.git", tmp_path / "q"
    sh("git", "init", "-q", "--bare", str(bare))
    sh("git", "init", "-q", str(clone))
    (clone / "first.txt").write_text("first\n")
    commit(clone, "first", 1_700_000_000)
    sh("git", "remote", "add", "origin", str(bare), cwd=clone)
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(HOOK.format(python=sys.executable, root=str(Path(__file__).resolve().parent.parent)))
    hook.chmod(0o755)
    return bare, clone


def test_the_reader_follows_what_is_loaded(history):
    """LibRepo where pygit2 is loaded (this test process, the guard), else HookRepo."""
    bare, _ = history
    env = dict(os.environ, GIT_DIR=str(bare))
    code = ("import sys; {} from gitswarm.githook import reader; r = reader(); "
            "print(type(r).__name__, 'pygit2' in sys.modules); r.close()")
    for preload, kind in [("", "HookRepo"), ("import pygit2;", "LibRepo")]:
        out = sh(sys.executable, "-c", code.format(preload), env=env).stdout.split()
        assert out == [kind, str(bool(preload))]


@pytest.mark.parametrize("way", ["git update-ref", "libgit2"])
def test_refs_move_all_or_none_either_way(history, way):
    """gitrefs.update_refs, the applier's last step, by `git update-ref --stdin` (a hook's own process)
    or a libgit2 transaction (the guard): a compare-and-swap of every ref, all or none, under git's
    own locks, with a reflog entry each."""
    from gitswarm.git import open_repository
    from gitswarm.gitrefs import update_refs

    bare, c = history
    git(bare, "config", "core.logAllRefUpdates", "always")
    repo = open_repository(bare) if way == "libgit2" else None
    try:
        def tips() -> dict[str, str]:
            return dict(reversed(line.split()) for line in git(bare, "for-each-ref", "--format=%(objectname) %(refname)",
                                                               "refs/heads/").splitlines())

        before = tips()
        stale = [(c["root"], c["second"], "refs/heads/old"), (c["second"], c["root"], "refs/heads/main")]  # main is not there
        assert not update_refs(str(bare), stale, repo) and tips() == before
        lock = bare / "refs" / "heads" / "old.lock"  # a push of git's own holds the ref
        lock.write_text("")
        assert not update_refs(str(bare), [(c["root"], c["second"], "refs/heads/old")], repo) and tips() == before
        lock.unlink()
        moves = [(c["root"], c["second"], "refs/heads/old"), (ZERO, c["after"], "refs/heads/made"),
                 (before["refs/heads/main"], before["refs/heads/main"], "refs/heads/main")]  # one that stays
        assert update_refs(str(bare), moves, repo)
        assert tips() == dict(before, **{"refs/heads/old": c["second"], "refs/heads/made": c["after"]})
        for ref, old, new in [("old", c["root"], c["second"]), ("made", ZERO, c["after"])]:
            last = (bare / "logs" / "refs" / "heads" / ref).read_text().splitlines()[-1]
            assert last.startswith(f"{old} {new} Test Committer <committer@example.com> ") and last.endswith("\tpush")
        assert not (bare / "logs" / "refs" / "heads" / "main").exists() or \
            len((bare / "logs" / "refs" / "heads" / "main").read_text().splitlines()) == 1  # no entry for a ref that stays
    finally:
        if repo is not None:
            repo.free()
