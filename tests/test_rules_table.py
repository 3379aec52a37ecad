"""The board's rules as tables, checked against gitswarm/rules.py directly: no git, no hook, no
process, the whole file in well under a second.

- every move from status to status, under every action, pushed by the one who may make it;
- every legal move pushed by each kind of pusher: the holder under its token, another worker, the
  holder under a stale token, nobody, with the lease live or lapsed, with or without the train;
- the rules of files, trailers and references (rows of changes and what the rules say of them).

tests/test_guard.py keeps the real pushes that prove the hub's hook runs these same rules (and the
guard's own: merges, rewinds, deletions, file modes, refs). The expected moves are written out
here, apart from rules.TRANSITIONS, so that a change to the rules' table shows up as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import yaml

from gitswarm import rules
from gitswarm import task as T
from gitswarm.errors import GitswarmError
from gitswarm.rules import Change, CommitInfo, check_commit
from gitswarm.task import Task

from taskfiles import A, B, BILLION_LAUGHS, C, CREATED, PA, PB, mk, set_fields, sized

AT = "2026-11-25T09:00:00Z"
WORK, LANDED = "a" * 40, "b" * 40  # a worker's commit, and the one the train landed on main
TRAIN_HOLDER = "tina"

# (from, to) -> the actions that may make the move; every other move is illegal.
LEGAL = {
    ("open", "claimed"): {"claim"},
    ("open", "cancelled"): {"cancel"},
    ("claimed", "done"): {"complete"},
    ("claimed", "failed"): {"fail"},
    ("claimed", "open"): {"release", "reclaim"},
    ("claimed", "dead"): {"reclaim"},
    ("claimed", "cancelled"): {"cancel"},
    ("claimed", "landing"): {"handoff"},
    ("failed", "open"): {"reopen"},
    ("failed", "dead"): {"bury"},
    ("landing", "done"): {"land"},
    ("landing", "failed"): {"reject"},
    ("landing", "open"): {"return"},
}
# Who may take each action: the new claim's worker under its new token (claimer), the claim's
# holder under its token (holder), anyone once the holder's lease has lapsed on the hub's clock
# (lapsed), the landing train's holder (train), or anyone.
AUTHORITY = {"claim": "claimer", "complete": "holder", "fail": "holder", "release": "holder",
             "handoff": "holder", "reclaim": "lapsed", "land": "train", "reject": "train", "return": "train",
             "reopen": "anyone", "bury": "anyone", "cancel": "anyone"}
MOVE_ACTIONS = tuple(AUTHORITY)  # every action but init, add and goal, which move no task


def _claimed() -> Task:
    """Claimed by alice on its second attempt: token 2, so that token 1 is a stale one."""
    first = rules.fail(rules.claim(mk(), "alice", at=AT), "alice", "broke", at=AT)
    return rules.claim(rules.reopen(first), "alice", at=AT)


OLD = {  # a task in each status, reached by legal moves
    "open": mk(),
    "claimed": _claimed(),
    "landing": rules.handoff(_claimed(), "alice", WORK, "parsed", at=AT),
    "done": rules.complete(_claimed(), "alice", "parsed", at=AT),
    "failed": rules.fail(_claimed(), "alice", "broke", at=AT),
    "dead": rules.bury(rules.fail(_claimed(), "alice", "broke", at=AT), "out of attempts", at=AT),
    "cancelled": rules.cancel(mk(), "not needed", at=AT),
}
assert set(OLD) == set(T.STATUSES), "a status without a task in this table"


def moved(old: Task, to: str, action: str) -> Task:
    """The task after moving `old` to status `to` the way the rules' own helpers would (by the
    action that makes that move where there is one)."""
    if to == "claimed":
        return rules.claim(old, "alice", at=AT)
    if to == "done":
        return rules.landed(old, LANDED, at=AT) if old.status == "landing" else rules.complete(old, "alice", "did it", at=AT)
    if to == "failed":
        return rules.reject(old, "red", at=AT) if old.status == "landing" else rules.fail(old, "alice", "broke", at=AT)
    if to == "landing":
        return rules.handoff(old, "alice", WORK, "parsed", at=AT)
    if to == "cancelled":
        return rules.cancel(old, "not needed", at=AT)
    if to == "dead":
        return rules.reclaim(old, "silent", dead=True, at=AT) if old.claim else rules.bury(old, "given up", at=AT)
    assert to == "open"
    if old.status == "landing":
        return rules.send_back(old, "does not replay", at=AT)
    if old.status == "failed":
        return rules.reopen(old)
    if old.claim and action == "reclaim":
        return rules.reclaim(old, "silent", at=AT)
    return rules.release(old)


# ---------------------------------------------------------------- who pushes

@dataclass(frozen=True)
class Who:
    """A pusher: whose name its trailers give (the right one, another, none), with which token
    (the right one, a stale one), whether the holder's lease has lapsed on the hub's clock and
    whether the pusher holds the landing train."""
    worker: str  # "right", "other", "none"
    token: str  # "right", "stale", "none"
    lapsed: bool
    train: bool


WHO = {
    "right": Who("right", "right", lapsed=True, train=True),
    "other-worker": Who("other", "right", lapsed=True, train=True),
    "stale-token": Who("right", "stale", lapsed=True, train=True),
    "nobody": Who("none", "none", lapsed=True, train=True),
    "lease-live": Who("right", "right", lapsed=False, train=True),
    "not-the-train": Who("right", "right", lapsed=True, train=False),
}


def trailers(action: str, old: Task, new: Task, who: Who) -> tuple[str | None, int | None]:
    """Gitswarm-Worker and Gitswarm-Token of the commit: the right ones are the new claim's for a
    claim, the old claim's for its holder's actions, the train holder's for the train's."""
    kind = AUTHORITY.get(action)
    if kind == "claimer":
        worker, token = (new.claim.worker, new.claim.token) if new.claim else ("alice", old.attempts + 1)
    elif kind == "holder":
        worker, token = (old.claim.worker, old.claim.token) if old.claim else ("alice", 1)
    elif kind == "train":
        worker, token = TRAIN_HOLDER, None
    else:
        worker, token = None, None
    if who.worker == "other":
        worker = "bob"
    if who.token == "stale":
        token = (token or 1) - 1
    if who.worker == "none":
        worker, token = None, None
    return worker, token


def refusal(frm: str, to: str, action: str, who: Who, worker: str | None) -> list[str] | None:
    """What the rules must say of the move (fragments of the message, the first its start);
    None: it is legal."""
    actions = LEGAL.get((frm, to))
    if actions is None:
        return [f"{PA}: illegal transition {frm} -> {to} (from {frm}: "]
    if action not in actions:
        return [f"{PA}: {frm} -> {to} is a ", *actions, f", but the commit says Gitswarm-Action: {action}"]
    kind = AUTHORITY[action]
    right = who.worker == "right" and who.token == "right"
    if kind == "claimer" and not right:
        return [f"{PA}: claimed for alice with token {OLD[frm].attempts + 1}, but the commit's trailers say"]
    if kind == "holder" and not right:
        return [f"{PA}: only the claim's holder (alice, token 2) may {action} it"]
    if kind == "lapsed" and not who.lapsed:
        return [f"{PA}: the lease of alice (token 2, 900s) has not lapsed on the hub's clock"]
    if kind == "train" and (not who.train or worker != TRAIN_HOLDER):
        return [f"{PA}: only the landing train's holder may {action} a queued task"]
    return None


def run(frm: str, to: str, action: str, who: Who) -> tuple[str | None, list[str] | None]:
    """Check the commit that moves OLD[frm] to `to` under `action`, pushed by `who`, as the guard
    does (check_commit on the file's bytes before and after). (what the rules said or None, what
    they must say or None)."""
    old = OLD[frm]
    new = moved(old, to, action)
    worker, token = trailers(action, old, new, who)
    info = rules.parse_trailers(rules.message(action, [new], worker, token))
    try:
        check_commit(info, [Change(PA, T.dump(old), T.dump(new))], exists=lambda _: True,
                     lapsed=lambda claim: who.lapsed,
                     trainer=lambda w: who.train and w is not None and w == TRAIN_HOLDER)
        said = None
    except GitswarmError as e:
        said = e.message
    return said, refusal(frm, to, action, who, worker)


def problem(said: str | None, expected: list[str] | None) -> str | None:
    """How what the rules said differs from what they must say; None: as they must."""
    if expected is None:
        return None if said is None else f"refused: {said}"
    if said is None:
        return f"accepted, but the rules must say: {expected[0]}"
    if not said.startswith(expected[0]) or not all(part in said for part in expected):
        return f"said {said!r}, not {expected!r}"
    return None


def illegal_lists_the_moves(frm: str, said: str | None) -> str | None:
    """An illegal transition names the moves there are from where the task is."""
    if said is None or "illegal transition" not in said:
        return None
    listed = said.split(f"(from {frm}: ", 1)[1].rstrip(")")
    allowed = {t for (f, t) in LEGAL if f == frm}
    if set(listed.split(", ")) == allowed or (not allowed and listed == "none, it has ended"):
        return None
    return f"lists {listed}, not {sorted(allowed) or 'none'}"


@pytest.mark.parametrize("frm", T.STATUSES)
def test_every_move_under_every_action(frm: str) -> None:
    """From `frm` to each status, under each action, pushed by the one who may take the action:
    legal exactly where LEGAL says. One test per status (a test per case costs pytest more than
    the rules); a failure lists every case that broke."""
    wrong = []
    for to in T.STATUSES:
        for action in MOVE_ACTIONS:
            said, expected = run(frm, to, action, WHO["right"])
            why = problem(said, expected) or illegal_lists_the_moves(frm, said)
            if why:
                wrong.append(f"{frm}->{to} by {action}: {why}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("frm,to,action", [(f, t, a) for (f, t), acts in LEGAL.items() for a in sorted(acts)],
                         ids=[f"{f}->{t}:{a}" for (f, t), acts in LEGAL.items() for a in sorted(acts)])
def test_every_legal_move_by_every_pusher(frm: str, to: str, action: str) -> None:
    """A legal move is taken only by whom it belongs to: the holder under its token (fencing: a
    stale token or another worker is refused), anyone once the lease lapsed, the train's holder."""
    wrong = []
    for name, who in WHO.items():
        why = problem(*run(frm, to, action, who))
        if why:
            wrong.append(f"pushed by {name}: {why}")
    assert not wrong, "\n".join(wrong)


def test_the_tables_here_are_the_rules_tables() -> None:
    """Every action that moves a task is in AUTHORITY; every legal move of the rules is here."""
    assert set(AUTHORITY) | {"init", "add", "goal"} == set(rules.ACTIONS)
    assert {(f, t): set(a) for (f, t), a in rules.TRANSITIONS.items()} == LEGAL
    assert set(rules.HOLDER_ACTIONS) == {a for a, k in AUTHORITY.items() if k == "holder"}
    assert set(rules.TRAIN_ACTIONS) == {a for a, k in AUTHORITY.items() if k == "train"}


def test_without_a_clock_or_a_train_nobody_reclaims_or_lands() -> None:
    """check_commit's defaults (the client's own check, which cannot tell the hub's clock nor who
    holds the train): a reclaim and the train's actions are refused."""
    for frm, to, action, rule in [("claimed", "open", "reclaim", "has not lapsed on the hub's clock"),
                                  ("landing", "done", "land", "only the landing train's holder may land")]:
        old = OLD[frm]
        new = moved(old, to, action)
        worker = TRAIN_HOLDER if action == "land" else None
        info = rules.parse_trailers(rules.message(action, [new], worker))
        with pytest.raises(GitswarmError, match=rule):
            check_commit(info, [Change(PA, T.dump(old), T.dump(new))], exists=lambda _: True)


# ---------------------------------------------------------------- changes besides the move itself

def _claimed_by_alice_token_1() -> Task:
    return rules.claim(mk(), "alice", at=AT)


SPECIAL_MOVES = {
    # name: (old task, old -> (action, new task, Gitswarm-Worker, Gitswarm-Token), what the rules say)
    "claimed->done-result-names-another-worker": (
        _claimed_by_alice_token_1(), lambda t: ("complete", rules.complete(t, "bob", "credit to bob"), "alice", 1),
        "result.worker must be the claim's holder (alice)"),
    "claimed->failed-result-names-another-worker": (
        _claimed_by_alice_token_1(), lambda t: ("fail", rules.fail(t, "bob", "blame bob"), "alice", 1),
        "result.worker must be the claim's holder (alice)"),
    "claimed->done-with-a-wrong-token": (
        _claimed_by_alice_token_1(), lambda t: ("complete", rules.complete(t, "alice", "stale"), "alice", 2),
        "only the claim's holder (alice, token 1) may complete it; this commit is from alice, token 2"),
    "claimed->done-by-another-worker": (
        _claimed_by_alice_token_1(), lambda t: ("complete", rules.complete(t, "bob", "mine now"), "bob", 1),
        "only the claim's holder (alice, token 1) may complete it; this commit is from bob, token 1"),
    "claimed->open-changing-attempts": (
        _claimed_by_alice_token_1(), lambda t: ("release", rules.release(t).replace(attempts=0), "alice", 1),
        "attempts changes only when the task is claimed"),
    "open->claimed-skipping-an-attempt": (
        mk(), lambda t: ("claim", rules.claim(t.replace(attempts=1), "alice"), "alice", 2),
        "a claim counts one more attempt (1, not 2)"),
    "open->claimed-trailers-name-another-worker": (
        mk(), lambda t: ("claim", rules.claim(t, "alice"), "bob", 1),
        "claimed for alice with token 1, but the commit's trailers say bob, token 1"),
    "claimed->dead-under-fail": (
        _claimed_by_alice_token_1(), lambda t: ("fail", t.replace(status="dead", claim=None, result={
            "worker": "alice", "at": CREATED, "reason": "gave up"}), "alice", 1),
        "claimed -> dead is a reclaim, but the commit says Gitswarm-Action: fail"),
    "title-changed": (mk(), lambda t: ("claim", rules.claim(t.replace(title="Something else"), "alice"), "alice", 1),
                      "field title never changes once a task exists"),
    "depends_on-changed": (_claimed_by_alice_token_1(), lambda t: (
        "complete", rules.complete(t.replace(depends_on=(B,)), "alice", "x"), "alice", 1),
        "field depends_on never changes once a task exists"),
    "landing->done-result-worker-changed": (
        rules.handoff(_claimed_by_alice_token_1(), "alice", WORK, "parsed", at=AT),
        lambda t: ("land", rules.landed(t, LANDED).replace(result={**t.result, "worker": "tina", "commit": LANDED}),
                   TRAIN_HOLDER, None),
        "result.worker must stay alice (who did the work)"),
    "landing->done-without-a-commit": (
        rules.handoff(_claimed_by_alice_token_1(), "alice", WORK, "parsed", at=AT),
        lambda t: ("land", t.replace(status="done", result={k: v for k, v in t.result.items() if k != "commit"}),
                   TRAIN_HOLDER, None),
        "result.commit must name the commit that landed on main"),
    "landing->open-commit-dropped": (
        rules.handoff(_claimed_by_alice_token_1(), "alice", WORK, "parsed", at=AT),
        lambda t: ("return", rules.send_back(t, "no replay").replace(
            result={**rules.send_back(t, "no replay").result, "commit": LANDED}), TRAIN_HOLDER, None),
        "result.commit must stay aaaaaaaaaa: the next attempt starts from it"),
}


@pytest.mark.parametrize("name", list(SPECIAL_MOVES))
def test_a_move_that_breaks_a_rule_of_its_own(name: str) -> None:
    old, make, rule = SPECIAL_MOVES[name]
    action, new, worker, token = make(old)
    info = rules.parse_trailers(rules.message(action, [new], worker, token))
    with pytest.raises(GitswarmError) as e:
        check_commit(info, [Change(PA, T.dump(old), T.dump(new))], exists=lambda _: True,
                     lapsed=lambda claim: False, trainer=lambda w: w == TRAIN_HOLDER)
    assert e.value.message.startswith(f"{PA}: ") and rule in e.value.message, e.value.message


# ---------------------------------------------------------------- files, trailers and references

def _doc(mutate: Callable[[dict], None]) -> bytes:
    doc = mk().to_dict()
    mutate(doc)
    return yaml.safe_dump(doc, sort_keys=False).encode()


@dataclass
class Row:
    """A commit: its message (or the add of the tasks `adds` with trailers for `named`), the files
    it changes (path, before, after), the tasks that exist beside them, and what the rules say
    (None: accepted)."""
    changes: list[tuple[str, bytes | None, bytes | None]]
    said: str | None
    action: str = "add"
    named: list[str] | None = None  # Gitswarm-Task trailers; default: the tasks changed
    message: str | None = None  # the whole message, instead of rules.message(action, named)
    existing: tuple[str, ...] = ()
    root: bool = False
    worker: str | None = None  # Gitswarm-Worker and Gitswarm-Token
    token: int | None = None


def add(*tasks: Task) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(t.path, None, T.dump(t)) for t in tasks]


def tamper(old: Task, new: Task) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(old.path, T.dump(old), T.dump(new))]


CLAIMED_A = rules.claim(mk(), "alice", at=AT)
ROWS: dict[str, Row] = {
    # files that are not valid tasks
    "yaml-unclosed-flow": Row([(PA, None, f"id: {A}\ntitle: [unclosed\n".encode())], f"{PA}: not valid YAML", named=[A]),
    "yaml-tab": Row([(PA, None, f"id: {A}\n\ttitle: indented with a tab\n".encode())], f"{PA}: not valid YAML",
                    named=[A]),
    "latin-1": Row([(PA, None, b"id: t-ab12cd34\ntitle: caf\xe9\n")], f"{PA}: not UTF-8", named=[A]),
    "missing-field": Row([(PA, None, _doc(lambda d: d.pop("title")))], f"{PA}: title: missing", named=[A]),
    "bad-status": Row([(PA, None, _doc(set_fields(status="working")))], f"{PA}: status: 'working' is not one of",
                      named=[A]),
    "int-as-str": Row([(PA, None, _doc(set_fields(priority="high")))], f"{PA}: priority: must be a whole number, not 'high'",
                      named=[A]),
    "list-as-str": Row([(PA, None, _doc(set_fields(depends_on=B)))], f"{PA}: depends_on: must be a list of task ids, not str",
                       named=[A]),
    "unknown-field": Row([(PA, None, _doc(set_fields(owner="bob")))], f"{PA}: owner: unknown field", named=[A]),
    "claimed-without-claim": Row([(PA, None, _doc(set_fields(status="claimed", attempts=1)))],
                                 f"{PA}: claim: a claimed task needs a claim", named=[A]),
    "empty-file": Row([(PA, None, b"")], f"{PA}: a task file must hold a YAML mapping", named=[A]),
    "a-list": Row([(PA, None, b"- a list\n- not a map\n")], f"{PA}: a task file must hold a YAML mapping", named=[A]),
    "key-given-twice": Row([(PA, None, T.dump(mk()) + b"title: a second title\n")], f"{PA}: title: given twice",
                           named=[A]),
    "new-task-not-open": Row(add(CLAIMED_A), f"{PA}: a new task starts open with 0 attempts"),
    "size-64KiB": Row([(PA, None, sized(mk(), T.MAX_FILE_BYTES))], None, named=[A]),
    "size-64KiB+1": Row([(PA, None, sized(mk(), T.MAX_FILE_BYTES + 1))],
                        f"{PA}: file is {T.MAX_FILE_BYTES + 1} bytes; the limit is 65536", named=[A]),
    "size-1MiB": Row([(PA, None, sized(mk(), 1024 * 1024))], f"{PA}: file is 1048576 bytes; the limit is 65536",
                     named=[A]),
    "tag-python-apply": Row([(PA, None, f"id: {A}\ntitle: !!python/object/apply:os.system ['touch /tmp/x']\n".encode())],
                            f"{PA}: title: YAML tags are not allowed (found tag:yaml.org,2002:python/object/apply:os.system)",
                            named=[A]),
    "tag-local": Row([(PA, None, f"id: {A}\ntitle: !foo bar\n".encode())], f"{PA}: title: YAML tags are not allowed (found !foo)",
                     named=[A]),
    "tag-str": Row([(PA, None, f"id: {A}\ntitle: !!str harmless\n".encode())], f"{PA}: title: YAML tags are not allowed",
                   named=[A]),
    "tag-document": Row([(PA, None, f"--- !!map\nid: {A}\n".encode())], f"{PA}: YAML tags are not allowed", named=[A]),
    "alias": Row([(PA, None, f"id: {A}\ntitle: &t Title\ndescription: *t\n".encode())],
                 f"{PA}: title: YAML anchors and aliases are not allowed", named=[A]),
    # refused at the first anchor, from the parser's events: nothing is ever expanded
    "billion-laughs": Row([(PA, None, BILLION_LAUGHS.encode())], f"{PA}: a: YAML anchors and aliases are not allowed", named=[A]),
    "id-not-the-file-name": Row([(PA, None, T.dump(mk("t-ab99ffff")))], f"{PA}: id t-ab99ffff does not match the file "
                                f"name ({A})", named=[A]),
    # where files may live
    **{f"misplaced:{path}": Row([(path, None, T.dump(mk()))], f"{path}: {problem}", named=[A]) for path, problem in [
        ("notes.txt", "lies outside tasks/"),
        ("docs/README.md", "lies outside tasks/"),
        ("tasks/README.md", "is not a task file name"),
        (f"tasks/{A}.yaml", "is not a task file name"),
        (f"tasks/ab/{A}.yml", "is not a task file name"),
        (f"tasks/zz/{A}.yaml", "is not a task file name"),
    ]},
    "readme-changed": Row([("README.md", b"# Board\n", b"# Our board\n"), *add(mk())], None),
    "task-file-deleted": Row([(PA, T.dump(mk()), None)], f"{PA}: task files are never deleted", action="cancel",
                             named=[A]),
    "readme-deleted": Row([("README.md", b"# Board\n", None)], "README.md: the board's README is never deleted",
                          action="init", named=[]),
    "goal-record-by-a-task-action": Row([("goals/g.yaml", None, b"name: g\n")],
                                        "goals/g.yaml: goal records change only in goal commits, not in a add",
                                        named=[]),
    "goal-record-name": Row([("goals/a/b.yaml", None, b"name: g\n")], "goals/a/b.yaml: is not a goal record name",
                            action="goal", named=[]),
    # ids and the commit's own tasks
    "add-over-an-open-task": Row(tamper(mk(), mk(title="Another task, same id")),
                                 f"{PA}: task {A} already exists; an add commit only creates tasks"),
    "add-over-a-done-task": Row(tamper(OLD["done"], mk(title="Another task, same id")),
                                f"{PA}: task {A} already exists"),
    "task-created-by-a-cancel": Row(add(mk()), f"{PA}: new task in a cancel commit; tasks are created by add commits",
                                    action="cancel"),
    "claim-with-another-claim": Row(tamper(mk(), CLAIMED_A) + tamper(mk(B), rules.claim(mk(B), "alice", at=AT)),
                                    f"a claim changes only the task it claims; this one changes 2 files ({PA}, {PB})",
                                    action="claim", worker="alice", token=1),
    "claim-with-the-readme": Row([("README.md", b"# Board\n", b"# sneaked into a claim\n"), *tamper(mk(), CLAIMED_A)],
                                 f"a claim changes only the task it claims; this one changes 2 files (README.md, {PA})",
                                 action="claim", named=[A], worker="alice", token=1),
    "claim-with-a-cancel": Row(tamper(mk(), CLAIMED_A) + tamper(mk(B), rules.cancel(mk(B), "in passing")),
                               f"{PB}: open -> cancelled is a cancel, but the commit says Gitswarm-Action: claim",
                               action="claim", worker="alice", token=1),
    "nothing-changed-but-a-task-named": Row([], "must name exactly the tasks it changes (none)", named=[A]),
    "trailers-name-none": Row(add(mk()), f"its Gitswarm-Task trailers (none) must name exactly the tasks it changes ({A})",
                              named=[]),
    "trailers-name-another": Row(add(mk()), f"trailers ({B}) must name exactly the tasks it changes ({A})",
                                 named=[B]),
    "trailers-one-too-many": Row(add(mk()), f"trailers ({A}, {B}) must name exactly the tasks it changes ({A})",
                                 named=[A, B]),
    "trailers-one-missing": Row(add(mk(), mk(B)), f"trailers ({A}) must name exactly the tasks it changes ({A}, {B})",
                                named=[A]),
    "init-with-a-task": Row(add(mk()), f"{PA}: new task in a init commit; tasks are created by add commits",
                            action="init", root=True),
    "first-commit-not-init": Row(add(mk()), "the first commit of tasks must be an init commit", root=True),
    "first-commit-init": Row([("README.md", None, b"# Board\n")], None, action="init", named=[], root=True),
    # trailers
    "no-trailers": Row(add(mk()), "commit: has no Gitswarm-Action trailer", message="add a task by hand\n"),
    "lowercase-key": Row(add(mk()), "commit: has no Gitswarm-Action trailer",
                         message=f"add a task\n\ngitswarm-action: add\nGitswarm-Task: {A}\n"),
    "unknown-action": Row(add(mk()), "commit: Gitswarm-Action 'create' is not one of: init, add, claim",
                          message=f"add a task\n\nGitswarm-Action: create\nGitswarm-Task: {A}\n"),
    "action-given-twice": Row(add(mk()), "commit: gives Gitswarm-Action twice",
                              message=rules.message("add", [mk()]) + "Gitswarm-Action: cancel\n"),
    "trailers-in-the-body-do-not-count": Row(add(mk()), "commit: has no Gitswarm-Action trailer",
                                             message=f"add\n\nGitswarm-Action: add\nGitswarm-Task: {A}\n\nsee above\n"),
    # references
    "depends-on-existing-and-sibling-tasks": Row(add(mk(B, depends_on=[A, C], parent=A), mk(C, depends_on=[A])), None,
                                                 existing=(A,)),
    "depends-on-a-missing-task": Row(add(mk(depends_on=[B, C])), f"{PA}: depends_on {C}: no such task",
                                     existing=(B,)),
    "parent-missing": Row(add(mk(parent=C)), f"{PA}: parent {C}: no such task", existing=(B,)),
    "cycle-of-three": Row(add(mk(A, depends_on=[B]), mk(B, depends_on=[C]), mk(C, depends_on=[A])),
                          f"{PA}: depends_on forms a cycle: {A} -> {B} -> {C} -> {A}"),
    "cycle-beside-a-good-one": Row(add(mk(A), mk(B, depends_on=[C]), mk(C, depends_on=[B])),
                                   "depends_on forms a cycle: "),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_a_commit_and_what_the_rules_say_of_it(name: str) -> None:
    row = ROWS[name]
    changes = [Change(path, old, new) for path, old, new in row.changes]
    named = row.named if row.named is not None else [T.id_from_path(c.path) for c in changes if T.id_from_path(c.path)]
    text = row.message if row.message is not None else rules.message(row.action, [mk(i) for i in named], row.worker, row.token)
    try:
        check_commit(rules.parse_trailers(text), changes, exists=lambda i: i in row.existing, root=row.root)
        said = None
    except GitswarmError as e:
        said = e.message
    if row.said is None:
        assert said is None, said
    else:
        assert said is not None and row.said in said, f"{row.said!r} not in {said!r}"
    if name.startswith("cycle-beside"):  # the cycle is named, at the file of a task in it; the good task is not
        assert said.startswith((PB, T.task_path(C))) and B in said and C in said and f"{A} ->" not in said, said


def test_trailers_come_from_the_last_paragraph_only() -> None:
    """A reason or summary in the body that looks like a trailer never counts as one."""
    text = rules.message("fail", [mk()], "alice", 1, body="tests broke:\nGitswarm-Task: see log\n\nGitswarm-Action: add")
    info = rules.parse_trailers(text)
    assert (info.action, info.tasks, info.worker, info.token, info.problem) == ("fail", [A], "alice", 1, None)
    assert rules.parse_trailers(f"x\n\nGitswarm-Action: claim\nGitswarm-Token: 12x\n").token == -1


# ---------------------------------------------------------------- work landing on main (workrules)

def _work(task_id: str | None) -> CommitInfo:
    return CommitInfo(action=None, tasks=[task_id] if task_id else [])


def _done(task_id: str, commit: str | None) -> Task:
    return rules.complete(rules.claim(mk(task_id), "alice", at=AT), "alice", "did it", commit=commit, at=AT)


OLD_WORK, OTHER_WORK, TIP = "c" * 40, "e" * 40, "d" * 40  # on main: A's work, B's work, the tip (no task's)
LANDING = {
    # name: (commits the push puts on main, tasks it completes, commits on main after it, what the
    # rules say (None: accepted))
    "work-with-its-completion": ([(WORK, _work(A))], [_done(A, WORK)], {WORK}, None),
    "work-without-its-completion": ([(WORK, _work(A))], [], {WORK},
                                    f"commit {WORK[:10]}: is work for {A}, which this push does not complete with it"),
    "work-completing-another-task": ([(WORK, _work(A))], [_done(B, WORK)], {WORK},
                                     f"commit {WORK[:10]}: is work for {A}, which this push does not complete"),
    "a-plain-commit-on-main": ([(WORK, _work(None))], [], {WORK}, None),
    "completion-naming-a-commit-not-on-main": ([], [_done(A, WORK)], set(),
                                               f"{PA}: result.commit {WORK[:10]} is not on main"),
    "completion-naming-its-work-already-on-main": ([], [_done(A, OLD_WORK)], {OLD_WORK, TIP}, None),
    "completion-naming-mains-tip": ([], [_done(A, TIP)], {OLD_WORK, TIP},
                                    f"{PA}: result.commit {TIP[:10]} does not name {A} in its Gitswarm-Task trailers "
                                    "(none): it is not the task's own work"),
    "completion-naming-another-tasks-work-on-main": ([], [_done(A, OTHER_WORK)], {OTHER_WORK},
                                                     f"does not name {A} in its Gitswarm-Task trailers ({B})"),
    "completion-naming-another-tasks-work-in-the-push": ([(WORK, _work(B))], [_done(A, WORK)], {WORK},
                                                         f"commit {WORK[:10]}: is work for {B}, which this push "
                                                         "does not complete with it"),
    "completion-without-a-commit": ([], [_done(A, None)], set(), None),
}


@pytest.mark.parametrize("name", list(LANDING))
def test_work_lands_only_with_its_tasks_completion(name: str) -> None:
    from gitswarm.workrules import check_landing

    pushed, completed, on_main, rule = LANDING[name]
    tasks_of = {OLD_WORK: [A], OTHER_WORK: [B], TIP: []}
    try:
        check_landing(pushed, completed, on_main=lambda c: c in on_main, tasks_of=lambda c: tasks_of[c])
        said = None
    except GitswarmError as e:
        said = e.message
    assert (said is None) if rule is None else (said is not None and rule in said), said


def test_two_tasks_completed_with_one_tasks_work() -> None:
    """Found by this table: check_landing once kept the completions by commit, so of two tasks
    completed with one commit only the last was checked (A could be done with B's work)."""
    from gitswarm.workrules import check_landing

    with pytest.raises(GitswarmError, match=f"does not name {A} in its Gitswarm-Task trailers"):
        check_landing([(WORK, _work(B))], [_done(A, WORK), _done(B, WORK)], on_main=lambda c: True,
                      tasks_of=lambda c: [])


def test_one_commit_that_names_two_tasks_completes_both() -> None:
    from gitswarm.workrules import check_landing

    both = CommitInfo(action=None, tasks=[A, B])
    check_landing([(WORK, both)], [_done(A, WORK), _done(B, WORK)], on_main=lambda c: True, tasks_of=lambda c: [])
    with pytest.raises(GitswarmError, match=f"is work for {B}, which this push does not complete with it"):
        check_landing([(WORK, both)], [_done(A, WORK)], on_main=lambda c: True, tasks_of=lambda c: [])
