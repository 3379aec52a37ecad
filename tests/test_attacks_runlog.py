"""Attacks on the runs refs (refs/gitswarm/runs/<task>/<attempt>, gitswarm/runguard.py): records
pushed by hand with plain git from a clone, that the hub's guard must refuse, each saying which ref,
which path and what to do; and a hub refusing a worker's record never breaks the worker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitswarm import names, runlog
from gitswarm import task as T
from gitswarm.agents import AgentResult, Trace
from gitswarm.board import Board

from conftest import gitswarm, sh
from test_command_agents import run_goal, task_of

DECLINED = "pre-receive hook declined"
REGULAR, EXEC, LINK, TREE, MODULE = "100644", "100755", "120000", "040000", "160000"


def git(*args: str, cwd: Path, env: dict[str, str] | None = None, input: bytes | None = None,
        check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, env=dict(os.environ, **(env or {})))
    if check and proc.returncode:
        raise AssertionError(f"git {' '.join(args)} failed:\n{proc.stderr.decode()}")
    return proc


class Forge:
    """Builds records with git's plumbing in a clone of the hub, and pushes them as someone."""

    def __init__(self, hub: Path, where: Path):
        self.clone = where / "forge"
        git("clone", "-q", str(hub), str(self.clone), cwd=where)

    @classmethod
    def inside(cls, repo: Path) -> "Forge":
        """Plumbing straight in `repo` (the hub itself: objects and refs written with no push, no
        hook, as an operator or a bug could)."""
        forge = cls.__new__(cls)
        forge.clone = repo
        return forge

    def tree(self, entries: dict[str, tuple[str, bytes | str]]) -> str:
        """`entries`: path -> (mode, content, or an object id for a tree or submodule)."""
        top: dict[str, tuple[str, bytes | str]] = {}
        below: dict[str, dict[str, tuple[str, bytes | str]]] = {}
        for path, entry in entries.items():
            head, _, rest = path.partition("/")
            if rest:
                below.setdefault(head, {})[rest] = entry
            else:
                top[head] = entry
        lines = []
        for name, (mode, data) in top.items():
            kind = {TREE: "tree", MODULE: "commit"}.get(mode, "blob")
            sha = data if isinstance(data, str) else \
                git("hash-object", "-w", "--stdin", cwd=self.clone, input=data).stdout.decode().strip()
            lines.append(f"{mode} {kind} {sha}\t{name}")
        lines += [f"{TREE} tree {self.tree(sub)}\t{name}" for name, sub in below.items()]
        return git("mktree", cwd=self.clone, input="\n".join(lines).encode() + b"\n").stdout.decode().strip()

    def commit(self, entries: dict[str, tuple[str, bytes | str]], message: str, parents: tuple[str, ...] = ()) -> str:
        args = [a for p in parents for a in ("-p", p)]
        return git("commit-tree", self.tree(entries), *args, "-m", message, cwd=self.clone).stdout.decode().strip()

    def push(self, refspec: str, pusher: str | None = "alice-id") -> str:
        env = {"GITSWARM_PUSHER": pusher} if pusher else {}
        proc = git("push", "origin", refspec, cwd=self.clone, env=env, check=False)
        return "" if proc.returncode == 0 else proc.stderr.decode()


def valid(task_id: str, attempt: int = 1, worker: str = "alice") -> dict[str, tuple[str, bytes | str]]:
    trace = Trace("agent --go", 0, "exited", 1.5, stdout="out\n", stderr="err\n", prompt="do it",
                  result={"status": "done"}, transcript=[{"request": {"model": "m"}, "response": {"ok": 1}}])
    files = runlog.record_files(task_id, attempt, worker, None, "done",
                                [AgentResult("did it", "finished", 1, 10, 2, "m", trace=trace)], T.now())
    return {path: (REGULAR, data) for path, data in files.items()}


@pytest.fixture
def setup(hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A task whose attempt 1 alice (bound to the identity alice-id) claimed and failed."""
    sh("git", "config", "gitswarm.pusherEnv", "local", cwd=hub)
    with Board(str(hub)) as board:
        [task] = board.add([T.new_task("Do the work")])
        monkeypatch.setenv("GITSWARM_PUSHER", "alice-id")
        board.claim("alice")
        board.fail(task.id, "alice", "it broke")
        monkeypatch.delenv("GITSWARM_PUSHER")
    return hub, task.id, Forge(hub, tmp_path)


def message(task_id: str, worker: str = "alice") -> str:
    return f"runs of {task_id} attempt 1: done\n\nGitswarm-Task: {task_id}\nGitswarm-Worker: {worker}\n"


def refused(forge: Forge, sha: str, ref: str, *expected: str, pusher: str | None = "alice-id") -> str:
    err = forge.push(f"{sha}:{ref}", pusher)
    assert DECLINED in err, err
    for text in expected:
        assert text in err, err
    assert sh("git", "rev-parse", "-q", "--verify", ref, cwd=forge.clone.parent / "hub.git", check=False).returncode
    return err


def test_the_record_of_a_worker_that_made_the_attempt_is_accepted_once(setup) -> None:
    hub, tid, forge = setup
    ref = names.runs_ref(tid, 1)
    sha = forge.commit(valid(tid), message(tid))
    assert forge.push(f"{sha}:{ref}") == ""
    again = forge.commit({**valid(tid), "1/stdout.txt": (REGULAR, b"rewritten")}, message(tid))
    err = forge.push(f"+{again}:{ref}")
    assert DECLINED in err and f"rejected {ref}: a runs ref is created once and never moved or deleted" in err
    err = forge.push(f":{ref}")
    assert DECLINED in err and "never moved or deleted" in err
    assert sh("git", "rev-parse", ref, cwd=hub).stdout.strip() == sha


def test_another_identity_cannot_record_the_workers_attempt(setup) -> None:
    _, tid, forge = setup
    sha = forge.commit(valid(tid), message(tid))
    refused(forge, sha, names.runs_ref(tid, 1), "worker alice belongs to alice-id; this push comes from mallory",
            pusher="mallory")
    refused(forge, sha, names.runs_ref(tid, 1), "worker alice belongs to alice-id; this push comes from an anonymous",
            pusher=None)


def test_a_record_under_another_workers_name_is_refused(setup) -> None:
    _, tid, forge = setup
    sha = forge.commit(valid(tid, worker="bob"), message(tid, "bob"))
    refused(forge, sha, names.runs_ref(tid, 1), f"attempt 1 of {tid} was made by alice; this record's "
            "Gitswarm-Worker is bob", pusher="bob-id")


def test_when_the_board_no_longer_tells_the_worker_its_trailer_must_be_the_pushers(hub: Path, tmp_path: Path,
                                                                                     monkeypatch) -> None:
    """A hand-back that spent no tokens leaves no result: the worker of attempt 1 is the record's
    Gitswarm-Worker, which must be bound to the pusher."""
    sh("git", "config", "gitswarm.pusherEnv", "local", cwd=hub)
    with Board(str(hub)) as board:
        [task] = board.add([T.new_task("Do the work")])
        monkeypatch.setenv("GITSWARM_PUSHER", "alice-id")
        board.claim("alice")
        board.release(task.id, "alice")
        monkeypatch.delenv("GITSWARM_PUSHER")
    forge, tid = Forge(hub, tmp_path), task.id
    carol = forge.commit(valid(tid, worker="carol"), message(tid, "carol"))
    refused(forge, carol, names.runs_ref(tid, 1), "the board no longer tells who made attempt 1",
            "Gitswarm-Worker carol is bound to nobody, not to this push's mallory", pusher="mallory")
    alice = forge.commit(valid(tid), message(tid))
    refused(forge, alice, names.runs_ref(tid, 1), "is bound to alice-id, not to this push's mallory", pusher="mallory")
    assert forge.push(f"{alice}:{names.runs_ref(tid, 1)}", "alice-id") == ""


def test_an_attempt_the_task_never_reached_or_an_unknown_task_is_refused(setup) -> None:
    _, tid, forge = setup
    sha = forge.commit(valid(tid, attempt=2), message(tid))
    refused(forge, sha, names.runs_ref(tid, 2), f"{tid} has made 1 attempts; attempt 2 never was")
    other = "t-0123456789ab"
    sha = forge.commit(valid(other), message(other))
    refused(forge, sha, names.runs_ref(other, 1), f"task {other} is not on the board")


@pytest.mark.parametrize("name", ["{tid}", "{tid}/0", "{tid}/01", "{tid}/1/x", "{tid}/-1", "{tid}/1.0",
                                  "T-BAD/1", "x/{tid}/1", "{tid}//1", "../{tid}/1"])
def test_bad_runs_ref_names_are_refused(setup, name: str) -> None:
    _, tid, forge = setup
    sha = forge.commit(valid(tid), message(tid))
    ref = "refs/gitswarm/runs/" + name.format(tid=tid)
    err = forge.push(f"{sha}:{ref}")
    assert DECLINED in err or "invalid refspec" in err, err  # git itself refuses some names
    if DECLINED in err:
        assert "not a runs ref: the name must be exactly refs/gitswarm/runs/<task id>/<attempt>" in err


def test_a_record_with_a_parent_is_refused_one_from_main_too(setup) -> None:
    hub, tid, forge = setup
    ref = names.runs_ref(tid, 1)
    main = sh("git", "rev-parse", "-q", "--verify", "main", cwd=hub, check=False).stdout.strip()
    base = forge.commit(valid(tid), message(tid))
    for parent in [base] + ([main] if main else []):
        sha = forge.commit(valid(tid), message(tid), parents=(parent,))
        refused(forge, sha, ref, f"rejected {ref}: commit {sha[:10]} has a parent: a record is a root commit")


def test_a_record_on_top_of_mains_history(hub: Path, tmp_path: Path, monkeypatch) -> None:
    """A whole copy of the repository: main's history as the parent, main's tree in the record."""
    clone = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "code.py").write_text("print(1)\n")
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-qm", "code", cwd=clone)
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)
    sh("git", "config", "gitswarm.pusherEnv", "local", cwd=hub)
    with Board(str(hub)) as board:
        [task] = board.add([T.new_task("Do the work")])
        monkeypatch.setenv("GITSWARM_PUSHER", "alice-id")
        board.claim("alice")
        monkeypatch.delenv("GITSWARM_PUSHER")
    forge, tid = Forge(hub, tmp_path), task.id
    ref = names.runs_ref(tid, 1)
    main = sh("git", "rev-parse", "main", cwd=hub).stdout.strip()
    main_tree = sh("git", "rev-parse", "main^{tree}", cwd=hub).stdout.strip()
    sha = forge.commit(valid(tid), message(tid), parents=(main,))
    refused(forge, sha, ref, "has a parent")
    files = {path: entry for path, entry in valid(tid).items() if not path.startswith("1/")}
    sha = forge.commit({**files, "1": (TREE, main_tree)}, message(tid))
    refused(forge, sha, ref, "1/code.py: not a file of the record")
    sha = forge.commit({**valid(tid), "repo": (TREE, main_tree)}, message(tid))
    refused(forge, sha, ref, "repo: an unknown entry where the record holds attempt.yaml and the folders 1, 2")


@pytest.mark.parametrize("change, expected", [
    ({"1/notes.txt": (REGULAR, b"x")}, "1/notes.txt: not a file of the record"),
    ({"evil.sh": (REGULAR, b"x")}, "evil.sh: an unknown entry where the record holds"),
    ({"1/stdout.txt": (LINK, b"/etc/passwd")}, "1/stdout.txt: a symlink; a record holds regular files only"),
    ({"1/stdout.txt": (EXEC, b"#!/bin/sh\n")}, "1/stdout.txt: an executable; a record holds regular files only"),
    ({"1/stdout.txt": (MODULE, "0" * 39 + "1")}, "1/stdout.txt: a submodule; a record holds regular files only"),
    ({"1/stdout.txt": (REGULAR, b"x" * (runlog.MAX_FILE_BYTES + 1))},
     f"1/stdout.txt: {runlog.MAX_FILE_BYTES + 1} bytes; the limit is {runlog.MAX_FILE_BYTES}"),
    ({"1/run.yaml": (REGULAR, b"command: [unclosed\n")}, "1/run.yaml: not valid YAML"),
    ({"1/run.yaml": (REGULAR, b"a: &x 1\nb: *x\n")}, "1/run.yaml: not valid YAML"),
    ({"1/run.yaml": (REGULAR, b"colour: red\n")}, "1/run.yaml: unknown field 'colour'"),
    ({"attempt.yaml": (REGULAR, b"- a list\n")}, "attempt.yaml: not a mapping"),
    ({"1/result.json": (REGULAR, b"{not json")}, "1/result.json: line 1 is not JSON"),
    ({"1/transcript.jsonl": (REGULAR, b'{"ok": 1}\n[1, 2]\n')}, "1/transcript.jsonl: line 2 is a JSON list"),
    ({"1/stderr.txt": (REGULAR, b"\xff\xfe")}, "1/stderr.txt: not UTF-8"),
    ({"3/run.yaml": (REGULAR, b"reason: x\n")}, "run folders 1, 3: they are numbered 1, 2, ... without a gap"),
    ({"2/stdout.txt": (REGULAR, b"x")}, "2/run.yaml: missing"),
    ({"0/run.yaml": (REGULAR, b"reason: x\n")}, "0: an unknown entry"),
    ({"51/run.yaml": (REGULAR, b"reason: x\n")}, "51: an unknown entry"),
    ({"attempt.yaml": (TREE, None)}, "attempt.yaml: a folder"),
])
def test_a_record_outside_the_layout_is_refused(setup, change: dict, expected: str) -> None:
    _, tid, forge = setup
    files = valid(tid)
    if change.get("attempt.yaml", (None,))[0] == TREE:
        del files["attempt.yaml"]
        change = {"attempt.yaml/x": (REGULAR, b"x")}
    sha = forge.commit({**files, **change}, message(tid))
    ref = names.runs_ref(tid, 1)
    err = refused(forge, sha, ref, f"rejected {ref}: ", expected)
    assert "hint:" in err


def test_attempt_yaml_must_name_the_ref_and_commits_task_attempt_and_worker(setup) -> None:
    _, tid, forge = setup
    other = valid("t-0123456789ab")
    sha = forge.commit({**valid(tid), "attempt.yaml": other["attempt.yaml"]}, message(tid))
    refused(forge, sha, names.runs_ref(tid, 1), f"attempt.yaml: task is 't-0123456789ab', not '{tid}'")


def test_a_record_with_too_many_entries_or_a_big_commit_is_refused(setup) -> None:
    _, tid, forge = setup
    many = {**valid(tid), **{f"{n}/run.yaml": (REGULAR, b"reason: x\n") for n in range(2, 80)}}
    refused(forge, forge.commit(many, message(tid)), names.runs_ref(tid, 1), "the tree: not a tree of at most")
    big = message(tid).replace("\n\n", "\n\n" + "y" * 5000 + "\n\n")
    refused(forge, forge.commit(valid(tid), big), names.runs_ref(tid, 1), "a record's commit is at most 4096")


def test_trailers_must_name_the_task_alone(setup) -> None:
    _, tid, forge = setup
    two = message(tid).replace(f"Gitswarm-Task: {tid}\n", f"Gitswarm-Task: {tid}\nGitswarm-Task: t-0123456789ab\n")
    refused(forge, forge.commit(valid(tid), two), names.runs_ref(tid, 1), "not " + tid + " alone")
    none = f"runs\n\nGitswarm-Task: {tid}\n"
    refused(forge, forge.commit(valid(tid), none), names.runs_ref(tid, 1), "no valid Gitswarm-Worker trailer")


REFUSE_RUNS = """#!/bin/sh
if grep -q ' refs/gitswarm/runs/'; then echo "no records here" >&2; exit 1; fi
exit 0
"""


def test_a_refused_record_never_breaks_the_worker(hub: Path, tmp_path: Path) -> None:
    """The hub refuses every runs ref (a hook of its operator's, before gitswarm's guard): the
    task still lands, and the worker says why its record was not kept."""
    legacy = hub / "hooks" / "pre-receive.legacy"
    legacy.write_text(REFUSE_RUNS)
    legacy.chmod(0o755)
    lines = run_goal(hub, tmp_path, "echo hi > out.txt")
    task = task_of(hub)
    assert task["status"] == "done" and sh("git", "show", "main:out.txt", cwd=hub).stdout == "hi\n"
    assert any("could not keep the runs of" in line and "no records here" in line for line in lines), lines
    assert not sh("git", "for-each-ref", "refs/gitswarm/runs/", cwd=hub).stdout


def test_no_push_writes_the_archive_of_runs(setup) -> None:
    """Only the hub's daemon folds records into refs/gitswarm/archive/runs (gitswarm/runarchive.py):
    a push that creates it, with a forged record of another task inside, is refused."""
    from gitswarm.runarchive import folder

    hub, tid, forge = setup
    forged = {f"{folder(tid, 1)}/{path}": entry for path, entry in valid(tid).items()}
    sha = forge.commit(forged, "Fold the runs of 1 attempt(s) of 1 ended task(s) into the archive\n")
    refused(forge, sha, names.ARCHIVE, f"rejected {names.ARCHIVE}")


def test_no_push_writes_the_archive_of_attempts(setup) -> None:
    """Only the hub's daemon folds best of N's attempts into refs/gitswarm/archive/attempts
    (gitswarm/runarchive.py): a push that creates it, with a forged attempt of a task inside (its
    tree and its commit's bytes, as the daemon lays them out), is refused."""
    from gitswarm.runarchive import folder

    hub, tid, forge = setup
    planted = forge.commit({"out.txt": (REGULAR, b"planted\n")}, f"attempt 1\n\nGitswarm-Task: {tid}-a1\n")
    raw = git("cat-file", "commit", planted, cwd=forge.clone).stdout
    tree = git("rev-parse", f"{planted}^{{tree}}", cwd=forge.clone).stdout.decode().strip()
    forged = {f"{folder(tid, 1)}/commit": (REGULAR, raw), f"{folder(tid, 1)}/tree": (TREE, tree)}
    sha = forge.commit(forged, "Fold the commits of 1 attempt(s) of 1 ended task(s) into the archive\n")
    refused(forge, sha, names.ATTEMPTS_ARCHIVE, f"rejected {names.ATTEMPTS_ARCHIVE}")


# ---------------------------------------------------------------- records written around the guard

BAD_YAML = {  # what a record's YAML may hold when it never met the guard, and what the reader says
    "date": (b"task: t\nwhen: 2026-02-30\n", "not valid YAML: a value cannot be read (day is out of range for month)"),
    "tag": (b"task: !!python/object/apply:os.system [echo owned]\n", "task: YAML tags are not allowed"),
    "alias": (b"task: &t t-x\nworker: *t\n", "task: YAML anchors and aliases are not allowed"),
    "utf8": (b"task: t\nworker: \xff\xfe\n", "not UTF-8 (invalid start byte at byte 16)"),
    "list": (b"- task\n- worker\n", "holds a list, not a mapping of fields"),
}


def plant(hub: Path, tid: str, attempt: int, files: dict[str, bytes | None]) -> str:
    """Write a record of `tid` into the hub with `git update-ref`, bypassing its guard: a valid
    record with `files` changed (None: removed). Its ref."""
    entries = {path: entry for path, entry in valid(tid, attempt).items() if path not in files}
    entries.update({path: (REGULAR, data) for path, data in files.items() if data is not None})
    forge = Forge.inside(hub)
    sha = forge.commit(entries, message(tid))
    ref = names.runs_ref(tid, attempt)
    git("update-ref", ref, sha, cwd=hub)
    return ref


@pytest.mark.parametrize("kind", sorted(BAD_YAML))
def test_gitswarm_runs_names_the_ref_the_file_and_the_fix_of_a_bad_attempt_yaml(setup, kind: str) -> None:
    hub, tid, _ = setup
    data, problem = BAD_YAML[kind]
    ref = plant(hub, tid, 1, {runlog.ATTEMPT_FILE: data})
    result = gitswarm("runs", str(hub), tid, check=False)
    assert result.returncode == 2, result.stderr
    assert f"error: {ref}:attempt.yaml: {problem}" in result.stderr, result.stderr
    assert f"git show {ref}:attempt.yaml" in result.stderr and f"git update-ref -d {ref}" in result.stderr
    assert "Traceback" not in result.stderr


def test_gitswarm_runs_names_a_bad_run_yaml_and_a_ref_at_a_blob(setup) -> None:
    hub, tid, _ = setup
    ref = plant(hub, tid, 1, {"1/run.yaml": b"code: 0\nended: 2026-13-01\n"})
    result = gitswarm("runs", str(hub), tid, check=False)
    assert result.returncode == 2 and f"error: {ref}:1/run.yaml: not valid YAML: a value cannot be read" \
        in result.stderr, result.stderr
    blob = git("hash-object", "-w", "--stdin", cwd=hub, input=b"not a commit\n").stdout.decode().strip()
    git("update-ref", ref, blob, cwd=hub)
    result = gitswarm("runs", str(hub), tid, check=False)
    assert result.returncode == 2 and f"error: {ref}: points at a blob, not a record's commit" in result.stderr
    assert f"git update-ref -d {ref}" in result.stderr and "Traceback" not in result.stderr


def test_a_record_with_odd_but_readable_fields_is_shown(setup) -> None:
    """Fields of the wrong kind that YAML reads (tokens as text, a worker with an escape sequence)
    never stop `gitswarm runs`: a count that is not one counts 0, text is made printable."""
    hub, tid, _ = setup
    plant(hub, tid, 1, {runlog.ATTEMPT_FILE: b'task: t\nworker: "\\e[31mred"\noutcome: [a, b]\n',
                        "1/run.yaml": b"tokens_in: lots\ntokens_out: [1]\nsteps: {a: 1}\n"})
    result = gitswarm("runs", str(hub), tid)
    assert "attempt 1  ['a', 'b']  worker red  runs 1  tokens 0 " in result.stdout, result.stdout
    assert "\x1b" not in result.stdout and "steps: {'a': 1}" in result.stdout


def test_gitswarm_report_skips_unreadable_records_says_so_and_renders(setup, tmp_path: Path) -> None:
    hub, tid, _ = setup
    refs = [plant(hub, tid, n, {runlog.ATTEMPT_FILE: BAD_YAML[kind][0]}) for n, kind in enumerate(sorted(BAD_YAML), 1)]
    good = plant(hub, tid, len(refs) + 1, {})
    blob = git("hash-object", "-w", "--stdin", cwd=hub, input=b"not a commit\n").stdout.decode().strip()
    at_blob = names.runs_ref(tid, len(refs) + 2)
    git("update-ref", at_blob, blob, cwd=hub)
    out = tmp_path / "run.html"
    result = gitswarm("report", str(hub), "-o", str(out), check=False)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout and f"{len(refs) + 1} unreadable file(s) skipped" in result.stdout
    page = out.read_text()
    assert "Unreadable board files and run records" in page
    for ref, kind in zip(refs, sorted(BAD_YAML)):
        assert f"{ref}:attempt.yaml: {BAD_YAML[kind][1]}" in page, kind
    assert page.count("record skipped: its runs are not counted") == len(refs)
    assert f"{at_blob}: points at a blob, not a record&#x27;s commit (record skipped)" in page
    assert good not in page

    from gitswarm import report as R

    found = R.build(str(hub))
    assert [a.runs for a in found.attempts] == [None]  # attempt 1's record is bad: no count is taken from it


def test_a_bad_record_in_the_archive_is_named_by_its_folder(setup, tmp_path: Path) -> None:
    """The archive (refs/gitswarm/archive/runs) is the hub's own: a bad record there was written on
    the hub. `gitswarm runs` names it by ref:folder/file, the report skips it."""
    from gitswarm.runarchive import folder

    hub, tid, _ = setup
    entries = {f"{folder(tid, 1)}/{path}": entry for path, entry in valid(tid).items()}
    entries[f"{folder(tid, 1)}/{runlog.ATTEMPT_FILE}"] = (REGULAR, BAD_YAML["tag"][0])
    git("update-ref", names.ARCHIVE, Forge.inside(hub).commit(entries, "fold\n"), cwd=hub)
    path = f"{names.ARCHIVE}:{folder(tid, 1)}/attempt.yaml"
    result = gitswarm("runs", str(hub), tid, check=False)
    assert result.returncode == 2 and f"error: {path}: task: YAML tags are not allowed" in result.stderr, result.stderr
    assert f"git show {path}" in result.stderr and "only the hub writes the archive" in result.stderr
    out = tmp_path / "run.html"
    result = gitswarm("report", str(hub), "-o", str(out))
    assert "1 unreadable file(s) skipped" in result.stdout
    page = out.read_text()
    assert f"{path}: task: YAML tags are not allowed (found tag:yaml.org,2002:python/object/apply:os.system) " \
           "(record skipped: its runs are not counted)" in page, page
