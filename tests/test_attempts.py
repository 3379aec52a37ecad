"""Best of N (issue 16, part 1): `attempts:` splits a task into N attempts that different workers
do, each kept at refs/gitswarm/attempts/<task>/<k>, and a selector lands one. Real hub, real
`serve`, real command agents; the judge's model is the real `openai` client against
tests/fake_openai.py on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import sh
from fake_openai import Request, fake_openai, tool_call  # noqa: F401
from test_attacks_queue import scene  # noqa: F401  (the fixture)
from test_swarm import push_goal, serve

from gitswarm import attempts, names
from gitswarm.daemon import Daemon

pytestmark = pytest.mark.slow  # whole swarms with attempts killed and judged

CONFIG = ("worker: {backend: command, command: 'true', network: 'off'}\n"
          "judge: {backend: command, command: 'true'}\nretry_backoff: 0\n")


def variants(*commands: str) -> str:
    return "attempts:\n" + "".join(f"  - {{backend: command, network: 'off', command: {json.dumps(c)}}}\n"
                                   for c in commands)


def goal(*commands: str, select: str | None = None, extra: str = "") -> str:
    return ("---\ncheck: \"grep -q right out.txt\"\nmax_cycles: 1\n" + variants(*commands)
            + (f"select: {json.dumps(select)}\n" if select else "") + extra
            + "tasks:\n  - title: Write out.txt\n---\nWrite the right answer to out.txt.\n")


WRONG, RIGHT, CLOSE = "echo wrong > out.txt", "echo right > out.txt", "echo close > out.txt"
# rejects "wrong" (exit 1); scores "right" 10 and anything else 1
SELECT = "if grep -q wrong out.txt; then echo no; exit 1; fi; if grep -q right out.txt; then echo 10; else echo 1; fi"


def tasks(hub: Path) -> dict[str, dict]:
    listing = sh("git", "ls-tree", "-r", "--name-only", "tasks", "--", "tasks/", cwd=hub).stdout.split()
    out = {}
    for path in listing:
        t = yaml.safe_load(sh("git", "show", f"tasks:{path}", cwd=hub).stdout)
        out[t["id"]] = t
    return out


def attempt_refs(hub: Path) -> dict[str, str]:
    text = sh("git", "for-each-ref", "--format=%(refname) %(objectname)", names.ATTEMPTS, cwd=hub).stdout
    return dict(line.split(" ") for line in text.splitlines())


def the_task(hub: Path) -> tuple[dict, list[dict]]:
    """The goal's task and its attempts, in order."""
    found = tasks(hub)
    parent = next(t for t in found.values() if t["parent"] is None)
    return parent, [found[i] for i in sorted(found) if found[i]["parent"] == parent["id"]]


def test_a_select_command_picks_the_right_attempt_and_the_losers_stay(hub: Path, tmp_path: Path) -> None:
    push_goal(hub, tmp_path, "g", goal(WRONG, CLOSE, RIGHT, select=SELECT), {".gitswarm.yaml": CONFIG})
    lines: list[str] = []
    assert serve(hub, lines, workers=2) == 0, "\n".join(lines)
    assert sh("git", "show", "main:out.txt", cwd=hub).stdout == "right\n"
    parent, kids = the_task(hub)
    assert [k["id"] for k in kids] == [f"{parent['id']}-a{k}" for k in (1, 2, 3)]
    assert all(k["status"] == "done" for k in kids) and parent["status"] == "done"
    refs = attempt_refs(hub)
    assert sorted(refs) == [names.attempts_ref(parent["id"], k) for k in (1, 2, 3)]  # the losers' refs stay
    for k, word in enumerate(("wrong", "close", "right"), 1):
        assert sh("git", "show", f"{refs[names.attempts_ref(parent['id'], k)]}:out.txt", cwd=hub).stdout == word + "\n"
    summary = parent["result"]["summary"]
    assert summary.startswith("Selected attempt 3 of 3") and "by select" in summary
    assert "attempt 1 (" in summary and "rejected (exit 1): no" in summary
    assert "attempt 2 (" in summary and "score 1" in summary and "score 10 (the highest)" in summary
    message = sh("git", "log", "-1", "--format=%B", "main", cwd=hub).stdout  # git log shows the selection
    assert "Selected attempt 3 of 3" in message and f"Gitswarm-Task: {parent['id']}\n" in message
    winner = sh("git", "log", "-1", "--format=%B", refs[names.attempts_ref(parent["id"], 3)], cwd=hub).stdout
    model = re.search(r"^Gitswarm-Model: .*$", winner, re.M).group(0)
    assert model in message.splitlines()  # the winner's model, as its attempt's commit says
    assert len(sh("git", "log", "--format=%H", "main", cwd=hub).stdout.split()) == 2  # the goal, the winner
    for kid in kids:  # each attempt's runs (output, prompt, tokens) are kept, as any task's
        assert "attempted: " in sh("git", "log", "-1", "--format=%s", f"refs/gitswarm/runs/{kid['id']}/1", cwd=hub).stdout


def test_a_tie_goes_to_the_earliest_attempt_and_what_select_prints_is_made_safe(hub: Path, tmp_path: Path) -> None:
    noisy = ("printf '\\033[31m'; head -c 100000 /dev/zero | tr '\\0' x; echo; "
             "if grep -q right out.txt; then echo 5; else echo 1; exit 1; fi")
    push_goal(hub, tmp_path, "g", goal(CLOSE, RIGHT, RIGHT, select=noisy), {".gitswarm.yaml": CONFIG})
    assert serve(hub, workers=2) == 0
    parent, _ = the_task(hub)
    summary = parent["result"]["summary"]
    assert summary.startswith("Selected attempt 2 of 3") and "score 5 (the highest)" in summary
    assert "\x1b" not in summary and len(summary) < 3000, summary
    assert "\x1b" not in sh("git", "log", "-1", "--format=%B", "main", cwd=hub).stdout


def test_every_attempt_rejected_fails_the_task_saying_why(hub: Path, tmp_path: Path) -> None:
    push_goal(hub, tmp_path, "g", goal(WRONG, WRONG, select=SELECT), {".gitswarm.yaml": CONFIG + "max_attempts: 1\n"})
    serve(hub, workers=2)
    parent, kids = the_task(hub)
    assert all(k["status"] == "done" for k in kids)
    assert parent["status"] in ("failed", "dead") and "rejected every attempt" in parent["result"]["reason"]
    assert sh("git", "cat-file", "-e", "main:out.txt", cwd=hub, check=False).returncode != 0


def judge_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake) -> str:
    endpoints = tmp_path / "endpoints.yaml"
    endpoints.write_text(f"endpoints:\n  fake: {{base_url: '{fake.base_url}', api_key_env: null}}\n")
    monkeypatch.setenv("GITSWARM_ENDPOINTS", str(endpoints))
    return CONFIG.replace("judge: {backend: command, command: 'true'}", "judge: {model: judge-m}")


def test_the_judge_model_picks_the_right_attempt_in_a_knockout(hub: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, fake_openai) -> None:
    """Three attempts, no select: command: the judge's model compares them two at a time (1 v 2,
    then the winner v 3), seeing each attempt's diff and the goal's test result on its tree; it
    prefers the attempt whose diff writes "right", and its reasons are recorded."""
    seen: list[str] = []

    @fake_openai.route
    def judge(request: Request):
        prompt = request.last["content"]
        seen.append(prompt)
        a, b = prompt.split('<attempt name="B">')
        pick = "A" if "+right" in a else "B"
        return tool_call("prefer", {"attempt": pick, "reasons": f"{pick} writes the right answer"})

    config = judge_endpoint(tmp_path, monkeypatch, fake_openai)
    push_goal(hub, tmp_path, "g", goal(WRONG, RIGHT, CLOSE, extra="test: \"grep -q right out.txt\"\nland: direct\n"),
              {".gitswarm.yaml": config})
    lines: list[str] = []
    assert serve(hub, lines, workers=2) == 0, "\n".join(lines)
    assert sh("git", "show", "main:out.txt", cwd=hub).stdout == "right\n"
    assert len(seen) == 2  # a knockout of three: two comparisons
    assert all("test result: " in p and "diff --git a/out.txt" in p for p in seen)
    assert "FAILED: grep -q right out.txt" in seen[0] and "passed: grep -q right out.txt" in seen[0]
    parent, _ = the_task(hub)
    summary = parent["result"]["summary"]
    assert summary.startswith("Selected attempt 2 of 3") and "the judge's model" in summary
    assert "preferred to attempt 1: B writes the right answer" in summary
    assert "preferred to attempt 3: A writes the right answer" in summary
    assert "lost to attempt 2" in summary
    assert parent["result"]["tokens"] > 0  # the judge's tokens count on the task (and the goal's budget)


def test_variants_give_each_attempt_its_own_model_or_agent(hub: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, fake_openai) -> None:
    """attempts: [{backend: openai, model: m-a}, {backend: command, ...}]: attempt 1 is gitswarm's
    model loop on model m-a (it writes the wrong answer), attempt 2 a command agent; the judge's
    model prefers attempt 2, and each attempt's commit and result carry its own model and tokens."""
    @fake_openai.route
    def answer(request: Request):
        if request.body["model"] == "judge-m":
            a, b = request.last["content"].split('<attempt name="B">')
            pick = "A" if "+right" in a else "B"
            return tool_call("prefer", {"attempt": pick, "reasons": f"{pick} is right"})
        assert request.body["model"] == "m-a", request.body["model"]
        if any(m.get("role") == "tool" for m in request.messages):
            return tool_call("finish", {"summary": "wrote the answer"})
        return tool_call("write_file", {"path": "out.txt", "content": "wrong\n"})

    config = judge_endpoint(tmp_path, monkeypatch, fake_openai)
    text = goal(RIGHT).replace("attempts:\n", "attempts:\n  - {backend: openai, model: m-a}\n")
    push_goal(hub, tmp_path, "g", text, {".gitswarm.yaml": config})
    lines: list[str] = []
    assert serve(hub, lines, workers=2) == 0, "\n".join(lines)
    assert sh("git", "show", "main:out.txt", cwd=hub).stdout == "right\n"
    parent, kids = the_task(hub)
    refs = attempt_refs(hub)
    first = sh("git", "log", "-1", "--format=%B", refs[names.attempts_ref(parent["id"], 1)], cwd=hub).stdout
    assert "Gitswarm-Model: m-a" in first and kids[0]["result"]["tokens"] == 2 * 15  # two calls of (10, 5)
    summary = parent["result"]["summary"]
    assert summary.startswith("Selected attempt 2 of 2") and "m-a): lost to attempt 2" in summary


def test_attempts_share_the_goals_budget(hub: Path, tmp_path: Path) -> None:
    """Each attempt reports 100 tokens; the budget is 250: the third attempt spends it, the goal
    stops and nothing is selected or landed."""
    report = "echo '{\"status\": \"done\", \"tokens_in\": 100, \"tokens_out\": 0}' > \"$GITSWARM_RESULT_FILE\""
    push_goal(hub, tmp_path, "g", goal(f"{WRONG}; {report}", f"{CLOSE}; {report}", f"{RIGHT}; {report}",
                                       select=SELECT, extra="budget: 250\n"), {".gitswarm.yaml": CONFIG})
    lines: list[str] = []
    assert serve(hub, lines, workers=1) == 4, "\n".join(lines)  # stopped, its budget spent
    parent, kids = the_task(hub)
    assert [k["result"]["tokens"] for k in kids] == [100, 100, 100]
    assert "budget spent" in sh("git", "show", "tasks:goals/g.yaml", cwd=hub).stdout
    assert parent["status"] != "done"
    assert sh("git", "cat-file", "-e", "main:out.txt", cwd=hub, check=False).returncode != 0


def test_a_worker_killed_mid_attempt_loses_only_its_attempt(hub: Path, tmp_path: Path) -> None:
    """A pool (its own process) splits the task and takes attempt 1, whose agent hangs; the pool is
    killed with SIGKILL. `serve` does attempts 2 and 3, takes attempt 1 back once its lease lapsed
    on the hub's clock, does it again (its second claim works), then selects and lands."""
    hang = 'if [ "$GITSWARM_ATTEMPT" = 1 ]; then exec sleep 30; fi; ' + RIGHT
    push_goal(hub, tmp_path, "g", goal(hang, CLOSE, WRONG, select=SELECT), {".gitswarm.yaml": CONFIG + "lease: 2s\n"})
    keeper = Daemon(hub, workers=0, planners=0, name="keeper", log=lambda _: None)  # puts the goal's task on the board
    thread = threading.Thread(target=keeper.run, daemon=True)
    thread.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    pool = subprocess.Popen([sys.executable, "-m", "gitswarm", "worker", str(hub), "--workers", "1",
                             "--planners", "0", "--id", "doomed", "--lease", "2s"],
                            cwd=os.environ["HOME"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and pool.poll() is None:
            first = next((t for t in tasks(hub).values() if t["id"].endswith("-a1") and t["status"] == "claimed"), None)
            if first is not None:
                break
            time.sleep(0.2)
        assert first is not None and first["claim"]["worker"].startswith("doomed"), "the pool never took attempt 1"
    finally:
        os.killpg(pool.pid, signal.SIGKILL)
        pool.wait()
        keeper.stop.set()
        thread.join()
    lines: list[str] = []
    assert serve(hub, lines, workers=2) == 0, "\n".join(lines)
    parent, kids = the_task(hub)
    assert [k["attempts"] for k in kids] == [2, 1, 1]  # only attempt 1 was taken again
    assert [k["status"] for k in kids] == ["done"] * 3 and kids[0]["result"]["worker"].startswith("t-")
    assert any(f"reclaim" in line and kids[0]["id"] in line for line in lines), "\n".join(lines)
    assert parent["result"]["summary"].startswith("Selected attempt 1 of 3")
    assert sh("git", "show", "main:out.txt", cwd=hub).stdout == "right\n"


def test_status_and_git_log_show_the_attempts(hub: Path, tmp_path: Path) -> None:
    push_goal(hub, tmp_path, "g", goal(WRONG, RIGHT, select=SELECT), {".gitswarm.yaml": CONFIG})
    assert serve(hub, workers=2) == 0
    from conftest import gitswarm

    status = gitswarm("status", str(hub)).stdout
    parent, kids = the_task(hub)
    assert all(k["id"] in status for k in kids) and "attempt 2/2: Write out.txt" in status
    log = sh("git", "log", "--format=%s", "tasks", "--", cwd=hub).stdout
    assert f"add 2 tasks: attempt 1/2: Write out.txt" in log
    assert re.search(rf"release {parent['id']}: Write out.txt", log)


# ---------------------------------------------------------------- the hub's guard

P, C = "t-cc", "t-cc-a1"


def test_the_guard_lets_only_the_attempts_worker_create_its_ref_once(scene) -> None:
    """Typed by hand and pushed with plain `git push --atomic` through the hub's real hook: an
    attempts ref alone, with another worker's completion of the attempt, at a commit that is not
    the attempt's own work, or moved after it was created, is refused; the holder's completion
    with its own commit passes."""
    from test_attacks_queue import TASKS, accepted, refused
    from test_guard import mk

    from gitswarm import rules

    s, ref = scene, names.attempts_ref(P, 1)
    accepted(s.clone, s.hub, {TASKS: s.board("add", [mk(P), mk(C, parent=P)])})
    accepted(s.clone, s.hub, {TASKS: s.board("claim", [rules.claim(s.task(C), "alice")], "alice", 1)})
    start = sh("git", "rev-parse", "HEAD", cwd=s.clone).stdout.strip()
    work = s.work(C)

    def completion(worker: str) -> str:
        sh("git", "reset", "-q", "--hard", start, cwd=s.clone)
        return s.board("complete", [rules.complete(s.task(C), worker, "did it", None)], worker, 1)

    refused(s.clone, s.hub, {ref: work}, ref, "only together with the completion of its attempt")
    refused(s.clone, s.hub, {TASKS: completion("bob"), ref: work}, "refs/heads/tasks", "alice")
    refused(s.clone, s.hub, {TASKS: completion("alice"), ref: s.work(P)}, ref, "not the attempt's own work")
    landed = s.work(C, name="landed.txt")
    s.put(landed, "refs/heads/main")  # as if it had landed
    refused(s.clone, s.hub, {TASKS: completion("alice"), ref: landed}, ref, "already on main")
    accepted(s.clone, s.hub, {TASKS: completion("alice"), ref: work})
    refused(s.clone, s.hub, {ref: s.work(C, name="other.txt")}, ref, "created once and never moved")


def test_status_says_a_split_task_waits_for_its_attempts() -> None:
    from gitswarm import rules
    from gitswarm.statusview import format_status
    from gitswarm.task import new_task

    parent = rules.release(rules.claim(new_task("Write out.txt", task_id=P), "w1"))
    one = rules.complete(rules.claim(new_task("attempt 1/2: Write out.txt", task_id=C, parent=P), "w1"), "w1", "ok")
    two = rules.claim(new_task("attempt 2/2: Write out.txt", task_id="t-cc-a2", parent=P), "w2")
    text = format_status([parent, one, two], set())
    rows = text.splitlines()
    i = next(i for i, ln in enumerate(rows) if ln.lstrip().startswith(P + " "))
    assert "waiting" in rows[i]
    assert rows[i + 1].strip() == "waits for t-cc-a2"


def test_the_winner_goes_through_the_landing_train(hub: Path, tmp_path: Path) -> None:
    """With a test: the selected attempt is handed to the landing queue and the train lands it,
    tested (its Gitswarm-Tested trailer)."""
    push_goal(hub, tmp_path, "g", goal(WRONG, RIGHT, select=SELECT, extra="test: \"test -s out.txt\"\n"),
              {".gitswarm.yaml": CONFIG})
    lines: list[str] = []
    assert serve(hub, lines, workers=2) == 0, "\n".join(lines)
    assert sh("git", "show", "main:out.txt", cwd=hub).stdout == "right\n"
    message = sh("git", "log", "-1", "--format=%B", "main", cwd=hub).stdout
    assert "Selected attempt 2 of 2" in message and "Gitswarm-Tested: passed" in message
    assert any("to the landing queue" in line for line in lines)


# ---------------------------------------------------------------- the spec and the rules, pure

@pytest.mark.parametrize("value, field, problem", [
    (0, "attempts", "0 is out of range"),
    (17, "attempts", "17 is out of range"),
    ("3", "attempts", "must be a number of attempts or a list of variants"),
    ([], "attempts", "lists 0 variants"),
    ([{"modle": "a"}], "attempts[0].modle", "unknown setting"),
    ([{"model": "a"}, {"attempts": 2}], "attempts[1].attempts", "cannot ask for attempts of its own"),
    ([{"api_key_env": "K"}], "attempts[0].api_key_env", "is not a setting main may give"),
])
def test_a_bad_attempts_spec_names_the_field_and_the_fix(value, field: str, problem: str) -> None:
    from gitswarm.goal import goal_errors

    text = "---\n" + yaml.safe_dump({"attempts": value}) + "---\nA goal.\n"
    errors = goal_errors("goals/g.md", text)
    assert len(errors) == 1 and errors[0].field == field and problem in errors[0].problem, errors
    task_text = "---\n" + yaml.safe_dump({"tasks": [{"title": "x", "attempts": value}]}) + "---\nA goal.\n"
    assert [e.field for e in goal_errors("goals/g.md", task_text)] == [f"tasks[0].{field}"]
    from gitswarm.config import config_errors

    assert [e.field for e in config_errors(yaml.safe_dump({"worker": {"attempts": value}}))] == [f"worker.{field}"]


def test_attempts_is_a_worker_setting() -> None:
    from gitswarm.config import config_errors
    from gitswarm.goal import goal_errors

    assert [e.field for e in config_errors("judge: {attempts: 2}\ndefaults: {attempts: 2}\n")] == ["judge.attempts"]
    assert [e.field for e in goal_errors("goals/g.md", "---\nmodels: {planner: {attempts: 2}}\n---\nA goal.\n")] \
        == ["models.planner.attempts"]


def test_where_n_comes_from_and_what_a_score_is() -> None:
    from gitswarm.goal import parse_goal

    g = parse_goal("goals/g.md", "---\nattempts: 2\nselect: ./score.sh\ntasks:\n  - title: a\n"
                   "    attempts: [{model: m1}, {model: m2}, {backend: command, command: ./x}]\n  - title: b\n---\nA goal.\n")
    assert [dict(v) for v in g.tasks[0].attempts] == [{"model": "m1"}, {"model": "m2"},
                                                      {"backend": "command", "command": "./x"}]
    assert attempts.chosen(g.tasks[0].attempts, g.attempts, ({}, {}, {}, {})) == g.tasks[0].attempts
    assert len(attempts.chosen(g.tasks[1].attempts, g.attempts, ())) == 2 and g.select == "./score.sh"
    assert attempts.chosen((), (), ({},)) == () and attempts.chosen((), (), ()) == ()
    assert attempts.score("0.5 then 3\nand finally -2.5e1\n") == -25.0
    assert attempts.score("no number here") is None
    assert attempts.split_ids("t-" + "a" * 44, 16) is not None and attempts.split_ids("t-" + "a" * 45, 10) is None


def test_a_task_waits_for_its_attempts_and_only_for_its_own() -> None:
    from gitswarm import rules
    from gitswarm.state import is_ready
    from gitswarm.task import new_task

    parent = new_task("Write", task_id=P)
    kids = [new_task("attempt", task_id=f"{P}-a{k}", parent=P) for k in (1, 2)]
    stranger = new_task("not an attempt", task_id="t-dd-a1")  # named like one, without the parent
    board = {t.id: t for t in [parent, *kids, stranger, new_task("x", task_id="t-dd")]}
    assert not is_ready(parent, board, 0, time.time()) and is_ready(board["t-dd"], board, 0, time.time())
    board[kids[0].id] = rules.complete(rules.claim(kids[0], "w"), "w", "ok")
    board[kids[1].id] = rules.fail(rules.claim(kids[1], "w"), "w", "broke")
    assert not is_ready(parent, board, 0, time.time())  # a failed attempt is retried: not over yet
    board[kids[1].id] = rules.bury(board[kids[1].id], "out of tries")
    assert is_ready(parent, board, 0, time.time())
    assert attempts.attempt_of(kids[0]) == (P, 1) and attempts.attempt_of(stranger) is None
