"""Attacks on the landing queue (issue 12): hand-offs, land refs, the train's lease and the train's
own actions, each typed by hand and pushed with plain `git push --atomic` through the hub's real
pre-receive hook. Every refused push must fail with "pre-receive hook declined", say the rule on
one `remote: gitswarm: rejected ...` line and leave every ref of the hub where it was.

These pushes were all refused on c59d90b (the queue's refs did not exist for the guard): what each
test here covers is the check that refuses it, and each fails when that check is taken out. Three
failed on 8093ad7, before their fixes: a land ref refused under the name of refs/heads/tasks, a
hand-off of a commit naming other tasks too, a hand-off stamped far from the hub's clock."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest

from gitswarm import git, identity, names, queue, rules
from gitswarm import task as T
from gitswarm.board import Board
from gitswarm.leases import prune_land_refs

from conftest import sh
from test_guard import A, B, DECLINED, commit, land, mk

HOLDER = "trainer"
AUTHOR = ("Test Author", "author@example.com")
MAIN, TASKS, TRAIN = "refs/heads/main", "refs/heads/tasks", names.TRAIN
LAND_A = names.land_ref(A, 1)


def hub_refs(hub: Path) -> dict[str, str]:
    text = sh("git", "for-each-ref", "--format=%(refname) %(objectname)", cwd=hub).stdout
    return dict(line.split(" ") for line in text.splitlines())


def pushed(clone: Path, updates: dict[str, str]):
    """`git push --atomic` of {ref: commit} (an empty commit deletes the ref), forced: the client
    holds nothing back (a forced fast-forward is the same push on the wire), the hub decides."""
    return sh("git", "push", "--atomic", "origin", *(f"+{sha}:{ref}" for ref, sha in updates.items()),
              cwd=clone, check=False)


def accepted(clone: Path, hub: Path, updates: dict[str, str]) -> None:
    proc = pushed(clone, updates)
    assert proc.returncode == 0, proc.stderr
    after = hub_refs(hub)
    for ref, sha in updates.items():
        assert after.get(ref, "") == sha, f"{ref} is not at {sha}"


def refused(clone: Path, hub: Path, updates: dict[str, str], *fragments: str) -> str:
    """Push; the hook must decline it with one `gitswarm: rejected` line holding every fragment,
    and no ref of the hub may move. The line."""
    before = hub_refs(hub)
    proc = pushed(clone, updates)
    assert proc.returncode != 0, f"the push went through:\n{proc.stderr}"
    assert DECLINED in proc.stderr, proc.stderr
    lines = [ln.removeprefix("remote: ").strip() for ln in proc.stderr.splitlines()
             if ln.startswith("remote: gitswarm: rejected")]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert hub_refs(hub) == before, "a ref of the hub moved"
    return lines[0]


@dataclass
class Scene:
    """A hub whose main has one commit, with task A claimed by alice (token 1) and B open, and a
    clone of it (tasks checked out) to write commits in by hand."""
    hub: Path
    clone: Path
    base: str  # main's first commit

    def commit(self, parent: str | None, files: dict[str, bytes], message: str) -> str:
        repo = pygit2.Repository(str(self.clone))
        try:
            return git.write_commit(repo, parent, files, message, AUTHOR)
        finally:
            repo.free()

    def work(self, *task_ids: str, parent: str | None = None, name: str = "work.txt") -> str:
        """A commit of work on main (or `parent`) whose Gitswarm-Task trailers name `task_ids`."""
        trailers = "".join(f"Gitswarm-Task: {t}\n" for t in task_ids)
        return self.commit(parent or self.base, {name: f"{name} for {task_ids}\n".encode()},
                           f"do {name}\n\n{trailers}")

    def lease(self, holder: str = HOLDER, seconds: int = 60, parent: str | None = None,
              files: dict[str, bytes] | None = None, message: str | None = None) -> str:
        """A lease commit: its own tree (empty unless `files`) whatever its parent holds."""
        repo = pygit2.Repository(str(self.clone))
        try:
            tree = git.write_commit(repo, None, files or {}, "tree", AUTHOR)
            sig = pygit2.Signature(*AUTHOR)
            return str(repo.create_commit(None, sig, sig, message or queue.lease_message(holder, seconds, "testing"),
                                          repo[tree].tree.id, [parent] if parent else []))
        finally:
            repo.free()

    def task(self, task_id: str = A) -> T.Task:
        path = T.task_path(task_id)
        return T.parse(sh("git", "show", f"HEAD:{path}", cwd=self.clone).stdout.encode(), path)

    def board(self, action: str, tasks: list[T.Task], worker: str | None = None, token: int | None = None) -> str:
        """Commit a board change in the clone (not pushed); the commit."""
        commit(self.clone, action, tasks, worker, token)
        return sh("git", "rev-parse", "HEAD", cwd=self.clone).stdout.strip()

    def put(self, sha: str, ref: str) -> None:
        """Set a ref of the hub to a commit of the clone WITHOUT the hook (a fetch runs no receive
        hooks): the state an unguarded write, or a direct landing, left."""
        sh("git", "update-ref", "refs/put", sha, cwd=self.clone)
        sh("git", "fetch", "-q", str(self.clone), f"+refs/put:{ref}", cwd=self.hub)

    def handoff(self, commit_: str, worker: str = "alice", token: int = 1, task_id: str = A) -> str:
        t = rules.handoff(self.task(task_id), worker, commit_, "did it")
        return self.board("handoff", [t], worker, token)

    def handed_off(self) -> str:
        """A's hand-off and its land ref pushed, the legal way; the work's commit."""
        work = self.work(A)
        accepted(self.clone, self.hub, {TASKS: self.handoff(work), LAND_A: work})
        return work

    def hold_train(self, holder: str = HOLDER, seconds: int = 60) -> str:
        tip = hub_refs(self.hub).get(TRAIN)
        lease = self.lease(holder, seconds, parent=tip)
        accepted(self.clone, self.hub, {TRAIN: lease})
        return lease


@pytest.fixture
def scene(hub: Path, board_clone: Path) -> Scene:
    s = Scene(hub, board_clone, "")
    s.base = s.commit(None, {"README.md": b"the app\n"}, "start the app")
    accepted(board_clone, hub, {MAIN: s.base})
    a = mk(A)
    commit(board_clone, "add", [a, mk(B)])
    commit(board_clone, "claim", [rules.claim(a, "alice")], "alice", 1)
    land(board_clone, hub)  # legal commits, put on the hub without the hook (test_guard.land)
    return s


# ---------------------------------------------------------------- the legal way through

def test_claim_handoff_lease_and_land_with_main_moved_pass_and_prune_keeps_the_rest(hub, tmp_path):
    """The whole round trip, every step through the hook: a fresh claim, the hand-off with its land
    ref, the train's lease, main moved by someone else meanwhile, then the train's landing (main,
    the task done, the lease renewed) in one push."""
    clone = tmp_path / "c"
    sh("git", "clone", "-q", "--branch", "tasks", str(hub), str(clone))
    s = Scene(hub, clone, "")
    s.base = s.commit(None, {"README.md": b"the app\n"}, "start the app")
    accepted(clone, hub, {MAIN: s.base})
    a = mk(A)
    accepted(clone, hub, {TASKS: s.board("add", [a])})
    accepted(clone, hub, {TASKS: s.board("claim", [rules.claim(a, "alice")], "alice", 1)})
    work = s.handed_off()
    assert s.task().status == "landing" and hub_refs(hub)[LAND_A] == work
    lease = s.hold_train()
    other = s.commit(s.base, {"other.txt": b"someone else\n"}, "land something else")
    accepted(clone, hub, {MAIN: other})
    replayed = s.commit(other, {"work.txt": b"work\n"}, f"do work.txt\n\nGitswarm-Task: {A}\n"
                        "Gitswarm-Tested: passed in 0.1s; batch #1 of 1 task(s); train trainer; command: true\n")
    done = s.board("land", [rules.landed(s.task(), replayed)], HOLDER)
    accepted(clone, hub, {MAIN: replayed, TASKS: done, TRAIN: s.lease(parent=lease)})
    assert s.task().status == "done" and s.task().result["commit"] == replayed
    assert s.task().result["worker"] == "alice"

    with Board(str(hub)) as board:
        board.refresh()
        said: list[str] = []
        assert prune_land_refs(hub, board, said.append) == 1
    assert LAND_A not in hub_refs(hub) and said == ["deleted 1 land ref(s) of ended tasks"]


def test_prune_deletes_the_land_refs_of_ended_tasks_only(scene: Scene) -> None:
    """done, dead and cancelled lose their land refs; open, claimed, landing and failed keep theirs
    (the next attempt starts from the last one's commit), as does a task not on the board."""
    tasks = {f"t-0000000{n}": mk(f"t-0000000{n}") for n in range(7)}
    scene.board("add", list(tasks.values()))
    ends = {"open": [], "claimed": ["claim"], "landing": ["claim", "handoff"], "failed": ["claim", "fail"],
            "done": ["claim", "handoff", "land"], "dead": ["claim", "fail", "bury"], "cancelled": ["cancel"]}
    work = scene.work(A)
    for (tid, t), (status, steps) in zip(tasks.items(), ends.items()):
        for step in steps:
            t, worker, token = {
                "claim": lambda t: (rules.claim(t, "alice"), "alice", 1),
                "handoff": lambda t: (rules.handoff(t, "alice", work, "did it"), "alice", 1),
                "land": lambda t: (rules.landed(t, work), HOLDER, None),
                "fail": lambda t: (rules.fail(t, "alice", "broke"), "alice", 1),
                "bury": lambda t: (rules.bury(t, "gave up"), None, None),
                "cancel": lambda t: (rules.cancel(t, "not needed"), None, None),
            }[step](t)
            scene.board(step, [t], worker, token)
        assert t.status == status
    land(scene.clone, scene.hub)
    refs = {names.land_ref(tid, 1): status for tid, status in zip(tasks, ends)}
    refs[names.land_ref("t-99999999", 1)] = "not on the board"
    scene.put(work, "refs/gitswarm/kept")
    for ref in refs:
        sh("git", "update-ref", ref, work, cwd=scene.hub)
    with Board(str(scene.hub)) as board:
        board.refresh()
        assert prune_land_refs(scene.hub, board, lambda line: None) == 3
    left = {refs[r] for r in hub_refs(scene.hub) if r in refs}
    assert left == {"open", "claimed", "landing", "failed", "not on the board"}


# ---------------------------------------------------------------- hand-offs and land refs

def test_a_handoff_without_its_land_ref_is_refused(scene: Scene) -> None:
    work = scene.work(A)
    refused(scene.clone, scene.hub, {TASKS: scene.handoff(work)},
            f"{T.task_path(A)}: is handed to the landing queue without its work: push {LAND_A}")


def test_a_land_ref_without_a_handoff_is_refused(scene: Scene) -> None:
    work = scene.work(A)
    refused(scene.clone, scene.hub, {LAND_A: work},
            f"gitswarm: rejected {LAND_A}: is created only together with its task's hand-off")


def test_a_land_ref_at_another_commit_than_the_handoff_is_refused(scene: Scene) -> None:
    work, other = scene.work(A), scene.work(A, name="other.txt")
    refused(scene.clone, scene.hub, {TASKS: scene.handoff(work), LAND_A: other},
            f"rejected {LAND_A}: is created only together with its task's hand-off (Gitswarm-Action: handoff) "
            "naming this commit")


def test_a_land_ref_under_another_attempt_is_refused(scene: Scene) -> None:
    work = scene.work(A)
    refused(scene.clone, scene.hub, {TASKS: scene.handoff(work), names.land_ref(A, 2): work},
            f"rejected {names.land_ref(A, 2)}: is created only together with its task's hand-off")


def test_a_land_ref_of_another_task_rides_along_with_a_handoff_and_is_refused(scene: Scene) -> None:
    work = scene.work(A)
    refused(scene.clone, scene.hub, {TASKS: scene.handoff(work), LAND_A: work, names.land_ref(B, 1): work},
            f"rejected {names.land_ref(B, 1)}: is created only together with its task's hand-off")


@pytest.mark.parametrize("how", ["fast-forward", "elsewhere", "delete"])
def test_a_land_ref_is_never_moved_or_deleted(scene: Scene, how: str) -> None:
    work = scene.handed_off()
    new = {"fast-forward": scene.work(A, parent=work, name="more.txt"),
           "elsewhere": scene.work(A, name="other.txt"), "delete": ""}[how]
    refused(scene.clone, scene.hub, {LAND_A: new},
            f"gitswarm: rejected {LAND_A}: a land ref is created once and never moved or deleted by a push")


def test_a_handoff_of_another_task_s_work_is_refused(scene: Scene) -> None:
    work = scene.work(B)
    refused(scene.clone, scene.hub, {TASKS: scene.handoff(work), LAND_A: work},
            f"result.commit {work[:10]} does not name {A} in its Gitswarm-Task trailers ({B})")


def test_a_handoff_of_work_that_also_names_another_task_is_refused(scene: Scene) -> None:
    """Such a commit can never land (check_landing: a commit on main is the work of the one task it
    completes): queued, it would only come back from the train as refused by the hub."""
    work = scene.work(A, B)
    refused(scene.clone, scene.hub, {TASKS: scene.handoff(work), LAND_A: work},
            f"result.commit {work[:10]} names {B} too in its Gitswarm-Task trailers")


def test_a_handoff_of_work_already_on_main_is_refused(scene: Scene) -> None:
    work = scene.work(A)
    scene.put(work, MAIN)  # as a direct landing puts it there
    refused(scene.clone, scene.hub, {TASKS: scene.handoff(work), LAND_A: work},
            f"result.commit {work[:10]} is already on main: it holds no new work")


def test_a_handoff_of_a_blob_is_refused(scene: Scene) -> None:
    blob = sh("git", "hash-object", "-w", "--stdin", cwd=scene.clone, input="not a commit\n").stdout.strip()
    refused(scene.clone, scene.hub, {TASKS: scene.handoff(blob), LAND_A: blob},
            f"result.commit {blob[:10]} is not a commit")


@pytest.mark.parametrize("off", [-86400, 86400], ids=["back-dated", "ahead"])
def test_a_handoff_stamped_far_from_the_hub_s_clock_is_refused(scene: Scene, off: int) -> None:
    """The queue lands the oldest hand-off first (result.at): a back-dated one would jump it."""
    work = scene.work(A)
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + off))
    t = rules.handoff(scene.task(), "alice", work, "did it", at=at)
    refused(scene.clone, scene.hub, {TASKS: scene.board("handoff", [t], "alice", 1), LAND_A: work},
            f"{T.task_path(A)}: result.at {at} is ", f"s {'ahead of' if off > 0 else 'behind'} the hub's clock "
            f"(more than {T.MAX_SKEW}s)")


@pytest.mark.parametrize("worker, token", [("bob", 1), ("alice", 2)], ids=["another-worker", "another-token"])
def test_a_handoff_by_someone_not_holding_the_claim_is_refused(scene: Scene, worker: str, token: int) -> None:
    work = scene.work(A)
    refused(scene.clone, scene.hub, {TASKS: scene.handoff(work, worker, token), LAND_A: work},
            f"only the claim's holder (alice, token 1) may handoff it; this commit is from {worker}, token {token}")


def test_a_handoff_whose_result_names_another_worker_is_refused(scene: Scene) -> None:
    work = scene.work(A)
    t = rules.handoff(scene.task(), "mallory", work, "did it")
    refused(scene.clone, scene.hub, {TASKS: scene.board("handoff", [t], "alice", 1), LAND_A: work},
            "result.worker must be the claim's holder (alice)")


# ---------------------------------------------------------------- the train's actions

def train_move(scene: Scene, action: str, by: str = HOLDER, **change) -> str:
    """A's move out of the queue, committed as `by` (Gitswarm-Worker), with result fields changed
    by `change` (`landed`: the commit a land names)."""
    t = scene.task()
    new = {"land": lambda: rules.landed(t, change.pop("landed", t.result["commit"])),
           "reject": lambda: rules.reject(t, "tests fail"),
           "return": lambda: rules.send_back(t, "does not replay")}[action]()
    if change:
        new = new.replace(result={**new.result, **change})
    return scene.board(action, [new], by)


@pytest.mark.parametrize("action", ["land", "reject", "return"])
def test_the_train_s_actions_are_refused_without_a_train(scene: Scene, action: str) -> None:
    work = scene.handed_off()
    updates = {MAIN: work} if action == "land" else {}
    refused(scene.clone, scene.hub, {**updates, TASKS: train_move(scene, action)},
            f"only the landing train's holder may {action} a queued task; this commit is from {HOLDER}, "
            "who does not hold refs/gitswarm/train")


@pytest.mark.parametrize("action", ["land", "reject", "return"])
def test_the_train_s_actions_are_refused_from_another_than_its_holder(scene: Scene, action: str) -> None:
    work = scene.handed_off()
    scene.hold_train()
    updates = {MAIN: work} if action == "land" else {}
    refused(scene.clone, scene.hub, {**updates, TASKS: train_move(scene, action, by="alice")},
            f"only the landing train's holder may {action} a queued task; this commit is from alice")


@pytest.mark.parametrize("action", ["land", "reject", "return"])
def test_the_train_s_holder_may_not_change_who_did_the_work(scene: Scene, action: str) -> None:
    work = scene.handed_off()
    scene.hold_train()
    updates = {MAIN: work} if action == "land" else {}
    refused(scene.clone, scene.hub, {**updates, TASKS: train_move(scene, action, worker=HOLDER)},
            "result.worker must stay alice (who did the work)")


@pytest.mark.parametrize("action", ["reject", "return"])
def test_the_train_keeps_the_commit_of_work_it_gives_back(scene: Scene, action: str) -> None:
    scene.handed_off()
    scene.hold_train()
    other = scene.work(A, name="other.txt")
    refused(scene.clone, scene.hub, {TASKS: train_move(scene, action, commit=other)},
            "result.commit must stay")


def test_a_land_whose_commit_is_not_on_main_is_refused(scene: Scene) -> None:
    scene.handed_off()
    scene.hold_train()
    refused(scene.clone, scene.hub, {TASKS: train_move(scene, "land")}, "is not on main")


def test_a_land_whose_commit_is_another_s_work_on_main_is_refused(scene: Scene) -> None:
    scene.handed_off()
    scene.hold_train()
    refused(scene.clone, scene.hub, {TASKS: train_move(scene, "land", landed=scene.base)},
            f"result.commit {scene.base[:10]} does not name {A} in its Gitswarm-Task trailers (none)")


def test_a_land_of_another_task_s_commit_pushed_with_it_is_refused(scene: Scene) -> None:
    scene.handed_off()
    scene.hold_train()
    theirs = scene.work(B, name="b.txt")
    refused(scene.clone, scene.hub, {MAIN: theirs, TASKS: train_move(scene, "land", landed=theirs)},
            f"commit {theirs[:10]}: is work for {B}, which this push does not complete with it")


@pytest.mark.parametrize("trailers", [
    "gitswarm-task: {b}", "Gitswarm-Task:{b}", "Gitswarm-Task : {b}", "Gitswarm-Task: {a}\nGitswarm-Task:\t{b}",
    "Gitswarm-Task: {a}\n# a comment\nGitswarm-Task: {b}", "Gitswarm-Task: {a}\n(cherry picked from commit 1)\n"
    "Gitswarm-Task: {b}\nmore words", "Signed-off-by: A <a@x>\nGitswarm-Task: {b}\nwords\nmore\nand more",
    "Gitswarm-Task: {a}\nGitswarm-Task: {b}\n\n# a comment", "Gitswarm-Task: {a}\nGITSWARM-TASK: {b}"])
def test_a_land_whose_commit_names_another_task_as_git_reads_trailers_is_refused(scene: Scene, trailers: str) -> None:
    """The guard knows which tasks a commit on main names as git reads its trailers (in any case,
    with a comment in the block, a quarter of trailers beside Signed-off-by...): the plain ones
    read without a git process (gitswarm/gittrailers.py), these through `git log`."""
    scene.handed_off()
    scene.hold_train()
    work = scene.commit(scene.base, {"w.txt": b"w\n"}, f"do w\n\n{trailers.format(a=A, b=B)}\n")
    refused(scene.clone, scene.hub, {MAIN: work, TASKS: train_move(scene, "land", landed=work)},
            f"commit {work[:10]}: is work for {B}, which this push does not complete with it")


def test_a_land_by_the_holder_with_its_commit_on_main_passes(scene: Scene) -> None:
    """The check's other side: the tests above fail for the reason they say, not any reason."""
    work = scene.handed_off()
    lease = scene.hold_train()
    accepted(scene.clone, scene.hub, {MAIN: work, TASKS: train_move(scene, "land"),
                                      TRAIN: scene.lease(parent=lease)})


# ---------------------------------------------------------------- the train's lease

TRAIN_HINT = "the landing train is held by `gitswarm serve`"


@pytest.mark.parametrize("shape, says", [
    ("files", "has files; a train lease's tree is empty"),
    ("parent", "a train lease's only parent is the ref's last beat"),
    ("big", "a train lease is at most 2048"),
    ("no trailers", "is not a lease commit (trailers Gitswarm-Train: <holder> and Gitswarm-Lease: <seconds>"),
    ("trailer in the subject", "is not a lease commit"),
    ("over an hour", "is not a lease commit"),
    ("zero", "is not a lease commit"),
    ("bad holder", "is not a lease commit"),
    ("a blob", "not a commit"),
])
def test_a_train_lease_must_have_the_train_s_shape(scene: Scene, shape: str, says: str) -> None:
    first = scene.hold_train()
    lease = {
        "files": lambda: scene.lease(parent=first, files={"x": b"x\n"}),
        "parent": lambda: scene.lease(parent=scene.base),
        "big": lambda: scene.lease(parent=first, message="train\n\n" + "x" * 2100 + "\n\n"
                                   f"Gitswarm-Train: {HOLDER}\nGitswarm-Lease: 60\n"),
        "no trailers": lambda: scene.lease(parent=first, message="train held by trainer\n"),
        "trailer in the subject": lambda: scene.lease(parent=first, message=f"Gitswarm-Train: {HOLDER}\n"),
        "over an hour": lambda: scene.lease(parent=first, seconds=queue.MAX_LEASE + 1),
        "zero": lambda: scene.lease(parent=first, seconds=0),
        "bad holder": lambda: scene.lease(parent=first, holder="two words"),
        "a blob": lambda: sh("git", "hash-object", "-w", "--stdin", cwd=scene.clone, input="x\n").stdout.strip(),
    }[shape]()
    refused(scene.clone, scene.hub, {TRAIN: lease}, f"rejected {TRAIN}: ", says)


def test_a_first_lease_with_a_parent_is_refused(scene: Scene) -> None:
    refused(scene.clone, scene.hub, {TRAIN: scene.lease(parent=scene.base)},
            f"rejected {TRAIN}: ", "none for a new ref")


def test_the_train_ref_is_never_deleted(scene: Scene) -> None:
    scene.hold_train()
    refused(scene.clone, scene.hub, {TRAIN: ""}, f"rejected {TRAIN}: train lease refs are never deleted")


def age_reflog(hub: Path, ref: str, seconds: float) -> None:
    """Write the hub's reflog of `ref` `seconds` into the past: the hub's clock says nobody renewed
    it since."""
    path = hub / "logs" / ref
    lines = []
    for line in path.read_text().splitlines():
        head, tab, msg = line.partition("\t")
        parts = head.split(" ")
        parts[-2] = str(int(parts[-2]) - int(seconds))
        lines.append(" ".join(parts) + tab + msg)
    path.write_text("\n".join(lines) + "\n")


def test_the_train_is_taken_over_only_once_its_lease_has_lapsed_on_the_hub_s_clock(scene: Scene) -> None:
    first = scene.hold_train(seconds=60)
    usurper = scene.lease("usurper", parent=first)
    refused(scene.clone, scene.hub, {TRAIN: usurper},
            f"rejected {TRAIN}: the landing train is held by {HOLDER}, whose lease (60s) has not lapsed")
    age_reflog(scene.hub, TRAIN, 61)
    accepted(scene.clone, scene.hub, {TRAIN: usurper})
    assert queue.parse_lease(sh("git", "log", "-1", "--format=%B", TRAIN, cwd=scene.hub).stdout) == ("usurper", 60)


def test_a_lease_commit_dated_back_does_not_take_the_train_over(scene: Scene) -> None:
    """The hub's clock (its reflog), never the pushed commit's date, says when a lease lapsed."""
    first = scene.hold_train(seconds=60)
    repo = pygit2.Repository(str(scene.clone))
    try:
        old = pygit2.Signature("usurper", "u@example.com", int(time.time()) - 3600, 0)
        usurper = str(repo.create_commit(None, old, old, queue.lease_message("usurper", 1), repo[first].tree.id,
                                         [repo[first].id]))
    finally:
        repo.free()
    refused(scene.clone, scene.hub, {TRAIN: usurper}, f"the landing train is held by {HOLDER}")


def test_the_holder_renews_its_own_lease_any_time(scene: Scene) -> None:
    first = scene.hold_train(seconds=60)
    accepted(scene.clone, scene.hub, {TRAIN: scene.lease(seconds=30, parent=first)})


def test_the_train_s_holder_name_is_bound_to_the_pusher_like_a_worker_s(scene: Scene, monkeypatch) -> None:
    sh("git", "config", "gitswarm.pusherEnv", "local", cwd=scene.hub)
    monkeypatch.setenv("GITSWARM_PUSHER", "ops")
    first = scene.hold_train()
    assert identity.bound(scene.hub, HOLDER) == "ops"
    monkeypatch.setenv("GITSWARM_PUSHER", "eve")
    proc = pushed(scene.clone, {TRAIN: scene.lease(parent=first)})
    assert proc.returncode != 0 and f"worker {HOLDER} belongs to ops; this push comes from eve" in proc.stderr
    assert hub_refs(scene.hub)[TRAIN] == first


@pytest.mark.parametrize("ref", [f"refs/gitswarm/land/{A}", f"refs/gitswarm/land/{A}/01", f"refs/gitswarm/land/{A}/0",
                                 f"refs/gitswarm/land/{A}/1/x", "refs/gitswarm/land/HEAD/1", "refs/gitswarm/train/x",
                                 "refs/gitswarm/trains"])
def test_refs_beside_the_queue_s_own_are_refused(scene: Scene, ref: str) -> None:
    refused(scene.clone, scene.hub, {ref: scene.work(A)}, f"rejected {ref}: a hub holds main, tasks")
