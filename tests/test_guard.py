"""The hub's pre-receive guard, attacked with plain `git push` from a clone of the hub.

Every test writes task files by hand (or with task.dump), commits them with real `git commit` and
pushes with real `git push`: nothing of git is mocked, the hook runs as it runs in production. A
rejection must fail the push with "pre-receive hook declined", name the file (or the commit) and
the rule on the `remote:` line, and leave the hub's `tasks` ref where it was.

The rules themselves (every transition, action and pusher; files, trailers, references) are
checked without git in tests/test_rules_table.py. Here: a few pushes per kind of change, proving
that the hook runs those rules on what git received (new, changed and deleted files, chains,
references to the hub's tasks), and the guard's own rules (merges, rewinds, deletion, file modes,
refs).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest
import yaml

from gitswarm import rules
from gitswarm import task as T
from gitswarm.task import Task

from conftest import commit_all, push, sh
from taskfiles import A, B, BILLION_LAUGHS, C, CREATED, PA, PB, mk, set_fields, sized
BOARD_REF = "refs/heads/tasks"
DECLINED = "pre-receive hook declined"
REJECTED = "gitswarm: rejected refs/heads/tasks: "


# ---------------------------------------------------------------- helpers

def tip(hub: Path) -> str:
    return sh("git", "rev-parse", BOARD_REF, cwd=hub).stdout.strip()


def head(clone: Path, rev: str = "HEAD") -> str:
    return sh("git", "rev-parse", rev, cwd=clone).stdout.strip()


def write(clone: Path, path: str, data: bytes | str) -> None:
    target = clone / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode() if isinstance(data, str) else data)


def commit(clone: Path, action: str, tasks: list[Task], worker: str | None = None,
           token: int | None = None, trailers_for: list[Task] | None = None) -> None:
    """Write the tasks' files and commit everything with the message the rules expect
    (`trailers_for` names other tasks in the trailers than the ones written)."""
    for t in tasks:
        write(clone, t.path, T.dump(t))
    commit_all(clone, rules.message(action, tasks if trailers_for is None else trailers_for, worker, token))


def accept(clone: Path, hub: Path) -> None:
    """Push; the hub must take it and its tasks ref must now be our HEAD."""
    proc = push(clone)
    assert proc.returncode == 0, proc.stderr
    assert tip(hub) == head(clone)


def reject(clone: Path, hub: Path, *fragments: str, args: tuple[str, ...] | None = None) -> str:
    """Push (`git push <args>`, default `git push origin HEAD:refs/heads/tasks`); the hook must
    decline it, its `remote:` line must hold every fragment, and the hub's tasks ref must not move.
    Returns that line."""
    before = tip(hub)
    proc = sh("git", "push", *args, cwd=clone, check=False) if args else push(clone)
    assert proc.returncode != 0, f"the push went through:\n{proc.stderr}"
    assert DECLINED in proc.stderr, proc.stderr
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.startswith("remote: ") and REJECTED in ln]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert tip(hub) == before, "the hub's tasks ref moved"
    return lines[0]


def land(clone: Path, hub: Path) -> None:
    """Put the clone's HEAD on the hub's tasks, fast-forward only, WITHOUT the hook: a fetch into the
    hub runs no receive hooks. Only for setting up a test's starting board from legal commits (the
    same sequences are pushed through the hook in the legal-transition tests); it saves the two
    hook processes an accepted push costs."""
    sh("git", "fetch", "-q", str(clone), "HEAD:refs/heads/tasks", cwd=hub)
    sh("git", "fetch", "-q", "origin", cwd=clone)
    assert tip(hub) == head(clone)


# Each legal step, as the holder alice takes it: old task -> (new task, Gitswarm-Worker, Gitswarm-Token).
STEPS: dict[str, Callable[[Task], tuple[Task, str | None, int | None]]] = {
    "claim": lambda t: (rules.claim(t, "alice"), "alice", t.attempts + 1),
    "complete": lambda t: (rules.complete(t, "alice", "did it"), "alice", t.claim.token),
    "fail": lambda t: (rules.fail(t, "alice", "broke it"), "alice", t.claim.token),
    "release": lambda t: (rules.release(t), "alice", t.claim.token),
    "reopen": lambda t: (rules.reopen(t), None, None),
    "cancel": lambda t: (rules.cancel(t, "not needed"), None, None),
}
PATH_TO = {"open": [], "claimed": ["claim"], "done": ["claim", "complete"],
           "failed": ["claim", "fail"], "cancelled": ["cancel"]}


def step(clone: Path, t: Task, name: str) -> Task:
    """Commit one legal step of task t; the task after it."""
    new, worker, token = STEPS[name](t)
    commit(clone, name, [new], worker, token)
    return new


def seed(clone: Path, hub: Path, status: str, task_id: str = A) -> Task:
    """Bring a task to `status` (claimed by alice, token 1) through legal commits and land them on
    the hub. The task as it is now."""
    t = mk(task_id)
    commit(clone, "add", [t])
    for name in PATH_TO[status]:
        t = step(clone, t, name)
    land(clone, hub)
    return t


def hub_file(hub: Path, path: str) -> bytes:
    return sh("git", "show", f"{BOARD_REF}:{path}", cwd=hub).stdout.encode()


# ---------------------------------------------------------------- legal changes are accepted

def test_hand_written_add_claim_complete_pushed_with_plain_git(board_clone: Path, hub: Path) -> None:
    """No gitswarm code on the client side: YAML and trailers typed by a person."""
    fields = (f"id: {A}\ntitle: Write the parser  # a comment is fine\ndescription: |\n  Two lines\n"
              "  of text.\nkind: work\ngoal: null\nparent: null\ndepends_on: []\npriority: 3\n")
    open_ = fields + f"status: open\nattempts: 0\nclaim: null\nresult: null\ncreated: '{CREATED}'\n"
    write(board_clone, PA, open_)
    commit_all(board_clone, f"add {A}: Write the parser\n\nGitswarm-Action: add\nGitswarm-Task: {A}\n")
    accept(board_clone, hub)

    claimed = fields + ("status: claimed\nattempts: 1\nclaim:\n  worker: alice\n  token: 1\n"
                        f"  at: '{T.now()}'\n  lease: 900\nresult: null\ncreated: '{CREATED}'\n")
    write(board_clone, PA, claimed)
    commit_all(board_clone, f"claim {A} (alice)\n\nGitswarm-Action: claim\nGitswarm-Task: {A}\n"
                            "Gitswarm-Worker: alice\nGitswarm-Token: 1\n")
    accept(board_clone, hub)

    done = fields + ("status: done\nattempts: 1\nclaim: null\nresult:\n  worker: alice\n"
                     f"  at: '2026-11-25T10:00:00Z'\n  summary: parsed\ncreated: '{CREATED}'\n")
    write(board_clone, PA, done)
    commit_all(board_clone, f"done {A} (alice)\n\nGitswarm-Action: complete\nGitswarm-Task: {A}\n"
                            "Gitswarm-Worker: alice\nGitswarm-Token: 1\n")
    accept(board_clone, hub)
    assert T.parse(hub_file(hub, PA), PA).status == "done"


@pytest.mark.parametrize("steps", [
    ["claim", "fail", "reopen", "claim", "release", "claim", "cancel"],
], ids="-".join)
def test_legal_transitions_are_accepted_one_push_each(board_clone: Path, hub: Path,
                                                      steps: list[str]) -> None:
    """The holder's actions and anyone's, each in a push of its own (every move: test_rules_table)."""
    t = mk(A)
    commit(board_clone, "add", [t])
    accept(board_clone, hub)
    for name in steps:
        t = step(board_clone, t, name)
        accept(board_clone, hub)
    assert hub_file(hub, PA) == T.dump(t)


def test_readme_and_dependencies_on_existing_and_sibling_tasks_are_accepted(board_clone: Path,
                                                                           hub: Path) -> None:
    commit(board_clone, "add", [mk(A)])
    accept(board_clone, hub)
    write(board_clone, "README.md", "# Our board\n")  # the one file allowed outside tasks/
    b, c = mk(B, depends_on=[A, C], parent=A), mk(C, depends_on=[A])
    commit(board_clone, "add", [b, c])
    accept(board_clone, hub)


def test_a_chain_of_legal_commits_is_accepted_in_one_push(board_clone: Path, hub: Path) -> None:
    a, b = mk(A), mk(B, depends_on=[A])
    commit(board_clone, "add", [a])
    commit(board_clone, "add", [b])
    a = step(board_clone, a, "claim")
    step(board_clone, a, "complete")
    b = rules.claim(b, "bob")
    commit(board_clone, "claim", [b], "bob", 1)
    accept(board_clone, hub)
    assert sh("git", "rev-list", "--count", BOARD_REF, cwd=hub).stdout.strip() == "6"


@pytest.mark.parametrize("position", ["first", "last"])
def test_one_bad_commit_in_a_chain_rejects_the_whole_push(board_clone: Path, hub: Path,
                                                          position: str) -> None:
    """The guard checks the chain commit by commit: the bad one is found wherever it sits, and
    nothing of the chain lands, not even the good commits before it."""
    done_b = seed(board_clone, hub, "done", B)
    good = [lambda: commit(board_clone, "add", [mk(A)]),
            lambda: step(board_clone, mk(A), "claim")]
    bad = lambda: commit(board_clone, "reopen", [done_b.replace(status="open", result=None)])  # noqa: E731 (done -> open)
    order = {"first": [bad, *good], "middle": [good[0], bad, good[1]], "last": [*good, bad]}[position]
    for make in order:
        make()
    assert sh("git", "rev-list", "--count", "origin/tasks..HEAD", cwd=board_clone).stdout.strip() == "3"
    reject(board_clone, hub, PB, "illegal transition done -> open")


# ---------------------------------------------------------------- files that are not valid tasks

@pytest.mark.parametrize("text,problem", [
    (b"id: t-ab12cd34\ntitle: caf\xe9\n", "not UTF-8"),
], ids=["latin-1"])
def test_a_file_that_is_not_valid_yaml(board_clone: Path, hub: Path, text: str | bytes,
                                       problem: str) -> None:
    write(board_clone, PA, text)
    commit_all(board_clone, rules.message("add", [mk(A)]))
    reject(board_clone, hub, PA, problem)


@pytest.mark.parametrize("mutate,problem", [
    (set_fields(status="working"), "status: 'working' is not one of"),
], ids=["bad-status"])
def test_a_file_that_is_not_a_valid_task(board_clone: Path, hub: Path, mutate, problem: str) -> None:
    doc = mk(A).to_dict()
    mutate(doc)
    write(board_clone, PA, yaml.safe_dump(doc, sort_keys=False))
    commit_all(board_clone, rules.message("add", [mk(A)]))
    reject(board_clone, hub, PA, problem)


# ---------------------------------------------------------------- where files may live

MISPLACED = [
    ("docs/README.md", "lies outside tasks/"),
    (f"tasks/zz/{A}.yaml", "is not a task file name"),
]


@pytest.mark.parametrize("path,problem", MISPLACED, ids=[path for path, _ in MISPLACED])
def test_a_file_outside_its_place(board_clone: Path, hub: Path, path: str, problem: str) -> None:
    write(board_clone, path, T.dump(mk(A)))
    commit_all(board_clone, rules.message("add", [mk(A)]))
    reject(board_clone, hub, path, problem)


@pytest.mark.parametrize("path,action,problem", [
    (PA, "cancel", "task files are never deleted"),
])
def test_a_file_deleted(board_clone: Path, hub: Path, path: str, action: str, problem: str) -> None:
    t = seed(board_clone, hub, "open")
    sh("git", "rm", "-q", path, cwd=board_clone)
    commit_all(board_clone, rules.message(action, [t] if path == PA else []))
    reject(board_clone, hub, path, problem)


# ---------------------------------------------------------------- ids

def test_adding_the_same_task_again_unchanged_adds_nothing(board_clone: Path, hub: Path) -> None:
    """Rewriting an identical file is no change at all: git sees no diff, the commit touches no
    task, and its Gitswarm-Task trailer names a task it does not change."""
    seed(board_clone, hub, "open")
    commit(board_clone, "add", [mk(A)])
    reject(board_clone, hub, "must name exactly the tasks it changes", f"({A})", "(none)")


# ---------------------------------------------------------------- transitions

ILLEGAL = {
    # seed status, old task -> (action, new task, Gitswarm-Worker, Gitswarm-Token), the rule.
    # Pushed here: PUSHED (the others in tests/test_guardserver.py, and every move, action and
    # pusher in tests/test_rules_table.py, without git)
    "done->open": ("done", lambda t: ("reopen", t.replace(status="open", result=None), None, None),
                   "illegal transition done -> open (from done: none, it has ended)"),
    "open->done": ("open", lambda t: ("complete", rules.complete(t, "alice", "no claim"), "alice", 1),
                   "illegal transition open -> done (from open: claimed, cancelled)"),
    "cancelled->open": ("cancelled", lambda t: ("reopen", rules.reopen(t), None, None),
                        "illegal transition cancelled -> open"),
    "failed->claimed": ("failed", lambda t: ("claim", rules.claim(t.replace(result=None), "bob"), "bob", 2),
                        "illegal transition failed -> claimed"),
    "claimed->claimed-stolen": ("claimed", lambda t: ("claim", rules.claim(t, "bob"), "bob", 2),
                                "illegal transition claimed -> claimed"),
    "claimed->dead": ("claimed", lambda t: ("fail", t.replace(status="dead", claim=None, result={
                          "worker": "alice", "at": CREATED, "reason": "gave up"}), "alice", 1),
                      "claimed -> dead is a reclaim, but the commit says Gitswarm-Action: fail"),
    "claimed->done-by-another-worker": (
        "claimed", lambda t: ("complete", rules.complete(t, "bob", "mine now"), "bob", 1),
        "only the claim's holder (alice, token 1) may complete it; this commit is from bob, token 1"),
    "claimed->done-with-a-wrong-token": (
        "claimed", lambda t: ("complete", rules.complete(t, "alice", "stale"), "alice", 2),
        "only the claim's holder (alice, token 1) may complete it; this commit is from alice, token 2"),
    "claimed->done-result-names-another-worker": (
        "claimed", lambda t: ("complete", rules.complete(t, "bob", "credit to bob"), "alice", 1),
        "result.worker must be the claim's holder (alice)"),
    "claimed->failed-by-another-worker": (
        "claimed", lambda t: ("fail", rules.fail(t, "bob", "sabotage"), "bob", 1),
        "only the claim's holder (alice, token 1) may fail it"),
    "claimed->open-by-another-worker": (
        "claimed", lambda t: ("release", rules.release(t), "bob", 1),
        "only the claim's holder (alice, token 1) may release it"),
    "claimed->open-changing-attempts": (
        "claimed", lambda t: ("release", rules.release(t).replace(attempts=0), "alice", 1),
        "attempts changes only when the task is claimed"),
    "open->claimed-under-another-action": (
        "open", lambda t: ("complete", rules.claim(t, "alice"), "alice", 1),
        "open -> claimed is a claim, but the commit says Gitswarm-Action: complete"),
    "open->claimed-trailers-name-another-worker": (
        "open", lambda t: ("claim", rules.claim(t, "alice"), "bob", 1),
        "claimed for alice with token 1, but the commit's trailers say bob, token 1"),
    "open->claimed-skipping-an-attempt": (
        "open", lambda t: ("claim", rules.claim(t.replace(attempts=1), "alice"), "alice", 2),
        "a claim counts one more attempt (1, not 2)"),
    "title-changed": ("open", lambda t: ("claim", rules.claim(t.replace(title="Something else"), "alice"),
                                         "alice", 1),
                      "field title never changes once a task exists"),
    "depends_on-changed": ("claimed", lambda t: ("complete", rules.complete(t.replace(depends_on=(B,)),
                                                                            "alice", "x"), "alice", 1),
                           "field depends_on never changes once a task exists"),
}
PUSHED = ["done->open", "claimed->done-by-another-worker", "claimed->done-with-a-wrong-token"]


@pytest.mark.parametrize("name", PUSHED)
def test_an_illegal_transition(board_clone: Path, hub: Path, name: str) -> None:
    status, make, rule = ILLEGAL[name]
    old = seed(board_clone, hub, status)
    action, new, worker, token = make(old)
    commit(board_clone, action, [new], worker, token)
    reject(board_clone, hub, PA, rule)


@pytest.mark.parametrize("other", ["readme"])  # another claim, a cancel beside it: test_rules_table.py
def test_a_claim_commit_that_changes_other_files(board_clone: Path, hub: Path, other: str) -> None:
    assert other == "readme"  # tests/test_guardserver.py pushes it with the resident guard up
    claimed = rules.claim(seed(board_clone, hub, "open", A), "alice")
    write(board_clone, "README.md", "# sneaked into a claim\n")
    commit(board_clone, "claim", [claimed], "alice", 1)
    reject(board_clone, hub, "a claim changes only the task it claims; this one changes 2 files",
           "README.md", PA)


# ---------------------------------------------------------------- size, tags, anchors

@pytest.mark.parametrize("size,ok", [(T.MAX_FILE_BYTES, True), (T.MAX_FILE_BYTES + 1, False)],
                         ids=["64KiB", "64KiB+1"])
def test_a_file_over_64_kib(board_clone: Path, hub: Path, size: int, ok: bool) -> None:
    write(board_clone, PA, sized(mk(A), size))
    commit_all(board_clone, rules.message("add", [mk(A)]))
    if ok:
        accept(board_clone, hub)
    else:
        reject(board_clone, hub, PA, f"file is {size} bytes; the limit is 65536")


@pytest.mark.parametrize("text,problem", [
    (f"id: {A}\ntitle: !!python/object/apply:os.system ['touch /tmp/gitswarm-pwned']\n",
     "YAML tags are not allowed (found tag:yaml.org,2002:python/object/apply:os.system)"),
    (BILLION_LAUGHS, "YAML anchors and aliases are not allowed"),
], ids=["python-apply", "billion-laughs"])
def test_yaml_tags_and_anchors(board_clone: Path, hub: Path, text: str, problem: str) -> None:
    write(board_clone, PA, text)
    commit_all(board_clone, rules.message("add", [mk(A)]))
    started = time.monotonic()
    reject(board_clone, hub, PA, problem)
    assert time.monotonic() - started < 10  # refused before anything is expanded


# ---------------------------------------------------------------- commits and their trailers

@pytest.mark.parametrize("shape", ["no-ff-side-branch", "diverged-branches"])
def test_a_merge_commit(board_clone: Path, hub: Path, shape: str) -> None:
    seed(board_clone, hub, "open", A)
    sh("git", "checkout", "-q", "-b", "side", cwd=board_clone)
    commit(board_clone, "add", [mk(B)])
    sh("git", "checkout", "-q", "tasks", cwd=board_clone)
    if shape == "diverged-branches":
        commit(board_clone, "add", [mk(C)])
    sh("git", "merge", "-q", "--no-ff", "-m", rules.message("add", [mk(B)]), "side", cwd=board_clone)
    assert head(board_clone, "HEAD^2") == head(board_clone, "side")
    reject(board_clone, hub, f"commit {head(board_clone)[:10]}", "merge commits are not allowed on tasks")


@pytest.mark.parametrize("message,problem", [
    (f"add a task\n\nGitswarm-Action: create\nGitswarm-Task: {A}\n",
     "Gitswarm-Action 'create' is not one of: init, add, claim"),
], ids=["unknown-action"])
def test_a_commit_without_a_valid_action_trailer(board_clone: Path, hub: Path, message: str,
                                                 problem: str) -> None:
    write(board_clone, PA, T.dump(mk(A)))
    commit_all(board_clone, message)
    reject(board_clone, hub, f"commit {head(board_clone)[:10]}", problem)


@pytest.mark.parametrize("field", ["depends_on"])
def test_a_reference_to_a_missing_task(board_clone: Path, hub: Path, field: str) -> None:
    seed(board_clone, hub, "open", B)
    t = mk(A, depends_on=[B, C]) if field == "depends_on" else mk(A, parent=C)
    commit(board_clone, "add", [t])
    reject(board_clone, hub, PA, f"{field} {C}: no such task")


# ---------------------------------------------------------------- the branch itself

def test_deleting_the_tasks_branch(board_clone: Path, hub: Path) -> None:
    reject(board_clone, hub, "the board is never deleted", args=("origin", ":tasks"))


def _amend(clone: Path, hub: Path) -> None:
    seed(clone, hub, "open")
    sh("git", "commit", "-q", "--amend", "-m", rules.message("add", [mk(A)]) + "\n(rewritten)\n", cwd=clone)


def _rewind(clone: Path, hub: Path) -> None:
    seed(clone, hub, "open")
    sh("git", "reset", "-q", "--hard", "HEAD~1", cwd=clone)


def _orphan(clone: Path, hub: Path) -> None:
    sh("git", "checkout", "-q", "--orphan", "fresh", cwd=clone)
    commit_all(clone, rules.message("init", []))


REWRITES = {"amended-tip": (_amend, "does not build on the board's tip"),
            "rewound": (_rewind, "rewinds the board"),
            "orphan-history": (_orphan, "does not build on the board's tip")}


@pytest.mark.parametrize("name", list(REWRITES))
def test_a_forced_non_fast_forward_push(board_clone: Path, hub: Path, name: str) -> None:
    rewrite, rule = REWRITES[name]
    rewrite(board_clone, hub)
    reject(board_clone, hub, f"commit {head(board_clone)[:10]}", rule,
           args=("-f", "origin", "HEAD:refs/heads/tasks"))


@pytest.mark.parametrize("name,args,said", [
    ("delete", ("origin", ":tasks"), "denying ref deletion for refs/heads/tasks"),
    ("amended-tip", ("-f", "origin", "HEAD:refs/heads/tasks"), "denying non-fast-forward refs/heads/tasks"),
    ("rewound", ("-f", "origin", "HEAD:refs/heads/tasks"), "denying non-fast-forward refs/heads/tasks"),
])
def test_the_hub_settings_refuse_deletion_and_rewrites_even_without_the_hook(
        board_clone: Path, hub: Path, name: str, args: tuple[str, ...], said: str) -> None:
    """Defence in depth: receive.denyDeletes and receive.denyNonFastForwards, set by `gitswarm init`,
    refuse these pushes by themselves. (With the hook in place the hook declines them first:
    git runs pre-receive before it applies those settings.)"""
    if name != "delete":
        REWRITES[name][0](board_clone, hub)
    hooks = hub / "hooks"
    (hooks / "pre-receive").rename(hooks / "pre-receive.off")  # this test's own temporary hub
    before = tip(hub)
    proc = sh("git", "push", *args, cwd=board_clone, check=False)
    assert proc.returncode != 0, proc.stderr
    assert DECLINED not in proc.stderr
    assert f"remote: error: {said}" in proc.stderr, proc.stderr
    assert tip(hub) == before


# ---------------------------------------------------------------- found in review

def test_rejects_a_task_file_that_is_not_a_regular_file(board_clone, hub):
    t = mk()
    commit(board_clone, "add", [t])
    (board_clone / t.path).chmod(0o755)
    sh("git", "add", "-A", cwd=board_clone)
    sh("git", "commit", "-q", "--amend", "--no-edit", cwd=board_clone)
    reject(board_clone, hub, t.path, "must be a regular file (mode 100644, not 100755)")


def test_trailers_in_a_reason_do_not_count(hub):
    from gitswarm.board import Board

    with Board(str(hub)) as board:
        t, = board.add([mk()])
        board.claim("alice")
        failed = board.fail(t.id, "alice", "tests broke:\nGitswarm-Task: see log\n\nGitswarm-Action: add")
    assert failed.status == "failed"
    assert sh("git", "log", "-1", "--format=%(trailers:key=Gitswarm-Action,valueonly)", "tasks",
              cwd=hub).stdout.strip() == "fail"


def test_a_chain_names_the_commit_that_broke_the_rule(board_clone, hub):
    good = mk()
    commit(board_clone, "add", [good])
    write(board_clone, T.task_path(B), T.dump(mk(B)).replace(b"status: open", b"status: nonsense"))
    commit_all(board_clone, rules.message("add", [mk(B)]))
    line = reject(board_clone, hub, T.task_path(B), "status")
    assert f"commit {head(board_clone)[:10]}: " in line


@pytest.mark.parametrize("refspec", ["HEAD:refs/heads/feature", "HEAD:refs/tags/v1", "HEAD:refs/notes/x",
                                     "HEAD:refs/gitswarm/other", "HEAD:refs/gitswarm/heartbeats/a/b",
                                     "HEAD:refs/gitswarm/land/t-aa", "HEAD:refs/gitswarm/land/t-aa/0",
                                     "HEAD:refs/gitswarm/train/x"])
def test_refs_outside_the_ones_gitswarm_uses_are_refused(board_clone, hub, refspec):
    result = push(board_clone, refspec)
    assert result.returncode != 0 and DECLINED in result.stderr
    assert "a hub holds main, tasks, the heartbeat refs and the landing queue's refs" in result.stderr
    target = refspec.split(":")[1]
    assert sh("git", "rev-parse", "-q", "--verify", target, cwd=hub, check=False).returncode != 0
