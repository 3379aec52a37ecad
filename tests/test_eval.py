"""`gitswarm eval` end to end: scripted models on loopback (tests/fake_openai.py), real hubs, real
`gitswarm serve --until-done` processes, real pushes and hooks, the hidden check in the sandbox."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fake_openai import FakeOpenAI, Request, Response, tool_call
from gitswarm import evalreport
from gitswarm.eval import MatrixInvalid, Variant, command, goal_text, load_matrix, settings_text
from gitswarm.evalsuite import load_suite
from test_e2e_openai import Brain, tool_results

pytestmark = pytest.mark.slow  # minutes: the eval suite end to end, trials killed on time

GOOD = "def add(a, b):\n    return a + b\n"
BROKEN = "def add(a, b):\n    return a - b\n"


@pytest.fixture
def server(monkeypatch):
    """The host's one endpoint, for the serve processes eval starts (they inherit this environment)."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with FakeOpenAI() as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.base_url)
        yield s


@pytest.fixture
def suite(tmp_path) -> Path:
    """A one-goal suite: write add(a, b); its hidden check the agents never see."""
    entry = tmp_path / "suite" / "adder"
    (entry / "repo").mkdir(parents=True)
    (entry / "hidden").mkdir()
    (entry / "repo" / "README.md").write_text("# adder\n")
    (entry / "goal.md").write_text("---\nmax_cycles: 1\n---\n# Add\n\nWrite add(a, b) in add.py.\n")
    (entry / "entry.yaml").write_text("check: 'python3 -B check_add.py'\ndifficulty: 1\nkind: function\n"
                                      "timeout: 5m\n")
    (entry / "hidden" / "check_add.py").write_text("from add import add\nassert add(2, 3) == 5, add(2, 3)\n")
    return tmp_path / "suite"


def brain() -> Brain:
    """One task; the worker writes add.py, right for model `good`, wrong for `bad`; the judge always
    says done (a liar for `bad`)."""
    def worker(req: Request) -> Response:
        if not tool_results(req):
            return tool_call("write_file", {"path": "add.py",
                                            "content": GOOD if req.body["model"] == "good" else BROKEN})
        return tool_call("finish", {"summary": "wrote add.py"})

    return Brain([{"title": "Write add", "description": "add(a, b) in add.py"}], judge="done", worker=worker)


def settings_file(tmp_path: Path, server: FakeOpenAI, model: str = "good") -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"model": model, "base_url": server.base_url, "max_steps": 10}}))
    return path


def run_eval(suite: Path, out: Path, lines: list[str], **kw) -> dict:
    kw = {"trials": 1, "jobs": 1, "workers": 1, "matrix": None, "settings": None, "only": "", "price": None,
          "workdir": None, "from_file": None} | kw
    assert command(suite and str(suite), out=out, say=lines.append, **kw) == 0
    return json.loads((out / "results.json").read_text())


def test_without_price_the_cost_per_success_is_what_the_board_kept(suite, tmp_path, server):
    """The roles' price setting (docs/swarm.md, Cost) puts each run's cost on the board; eval reads it."""
    server.route(brain())
    path = settings_file(tmp_path, server)
    path.write_text(path.read_text() + "worker: {price: {input: 2, output: 8}}\n")
    doc = run_eval(suite, tmp_path / "out", [], settings=path, workdir=tmp_path / "work")
    [result] = doc["results"]
    assert result["passed"] and result["cost"] and result["cost"] > 0, result
    assert doc["summary"]["default"]["all"]["cost_per_success"] == pytest.approx(result["cost"])


def test_a_scripted_swarm_solves_a_goal_and_eval_reports_success(suite, tmp_path, server):
    server.route(brain())
    lines: list[str] = []
    doc = run_eval(suite, tmp_path / "out", lines, settings=settings_file(tmp_path, server), price=2.0,
                   workdir=tmp_path / "work")
    [result] = doc["results"]
    assert result["error"] is None, result
    assert result["passed"] and result["judge"] == "done" and result["status"] == "done", result
    assert result["tasks"] == 1 and result["landed"] == 1 and result["tokens"] > 0 and result["exit"] == 0
    overall = doc["summary"]["default"]["all"]
    assert (overall["successes"], overall["trials"], overall["false_done"]) == (1, 1, 0)
    assert doc["meta"]["endpoints"] == {"default": server.base_url} and len(doc["meta"]["suite_sha256"]) == 64
    assert "test-key" not in json.dumps(doc)
    assert overall["ci"][1] == 1.0 and 0.0 < overall["ci"][0] < 0.3  # Wilson, one trial
    assert overall["cost_per_success"] == pytest.approx(result["tokens"] * 2.0 / 1e6)
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| default | **all** | 1/1 (100%) |" in table and "| default | adder | 1/1 (100%) |" in table
    assert table in "\n".join(lines)
    # the hidden check stayed outside the hub: no ref of it holds check_add.py
    hub = tmp_path / "work" / "default" / "adder" / "1" / "hub.git"
    assert subprocess.run(["git", "log", "--all", "--format=%H", "--", "check_add.py"], cwd=hub,
                          capture_output=True, text=True).stdout == ""
    assert all("check_add" not in json.dumps(r.body) for r in server.requests)


def test_a_lying_judge_is_caught_as_false_done(suite, tmp_path, server):
    server.route(brain())
    doc = run_eval(suite, tmp_path / "out", [], settings=settings_file(tmp_path, server, model="bad"))
    [result] = doc["results"]
    assert result["error"] is None, result
    assert result["judge"] == "done" and not result["passed"], result
    assert "AssertionError: -1" in result["check_output"]
    overall = doc["summary"]["default"]["all"]
    assert (overall["successes"], overall["false_done"], overall["judge_accuracy"]) == (0, 1, 0.0)
    assert "| default | adder | 0/1 (0%) | 0%-79% |" in (tmp_path / "out" / "results.md").read_text()


def test_a_matrix_of_two_configurations_makes_one_table_that_from_rebuilds(suite, tmp_path, server):
    server.route(brain())
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text("variants:\n  good: {settings: {defaults: {model: good}}, price: 1.5}\n"
                      "  bad: {settings: {defaults: {model: bad}}}\n")
    out = tmp_path / "out"
    doc = run_eval(suite, out, [], settings=settings_file(tmp_path, server), matrix=matrix, jobs=2)
    assert [(r["variant"], r["passed"], r["judge"]) for r in doc["results"]] == [("good", True, "done"),
                                                                                 ("bad", False, "done")]
    assert {r["variant"]: r["tokens"] > 0 for r in doc["results"]} == {"good": True, "bad": True}
    table = (out / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| good") or line.startswith("| bad")]
    assert [r.split(" | ")[:3] for r in rows] == [["| good", "**all**", "1/1 (100%)"], ["| bad", "**all**", "0/1 (0%)"],
                                                  ["| good", "adder", "1/1 (100%)"], ["| bad", "adder", "0/1 (0%)"]]
    # the real command line rebuilds the table (and the JSON and PNG) from the results alone
    again = tmp_path / "again"
    proc = subprocess.run([sys.executable, "-m", "gitswarm", "eval", "--from", str(out / "results.json"),
                           "--out", str(again)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (again / "results.md").read_text() == table and table in proc.stdout
    assert json.loads((again / "results.json").read_text()) == doc
    if importlib.util.find_spec("matplotlib") is not None:  # the bench extra: else no PNG either time
        assert (again / "results.png").read_bytes() == (out / "results.png").read_bytes()
    else:
        assert not (out / "results.png").exists() and "no PNG: matplotlib is not installed" in proc.stdout


def test_a_variant_gives_its_own_prompts(suite, tmp_path, server):
    """`prompts: {worker: file}` pushes the file as .gitswarm/prompts/worker.md on the trial's hub:
    here the worker writes the right add.py only when its prompt carries the variant's words."""
    from gitswarm.prompts import load

    def worker(req: Request) -> Response:
        if not tool_results(req):
            right = "Prefer the obvious solution." in req.messages[1]["content"]
            return tool_call("write_file", {"path": "add.py", "content": GOOD if right else BROKEN})
        return tool_call("finish", {"summary": "wrote add.py"})

    server.route(Brain([{"title": "Write add", "description": "add(a, b) in add.py"}], judge="done", worker=worker))
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "plain-worker.md").write_text("Prefer the obvious solution.\n\n" + load("worker")[1])
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text("variants:\n  shipped: {}\n  plain: {prompts: {worker: prompts/plain-worker.md}}\n")
    doc = run_eval(suite, tmp_path / "out", [], settings=settings_file(tmp_path, server), matrix=matrix, jobs=2)
    assert {r["variant"]: r["passed"] for r in doc["results"]} == {"shipped": False, "plain": True}
    (tmp_path / "prompts" / "plain-worker.md").write_text("Use {{no_such_thing}}.\n")
    with pytest.raises(MatrixInvalid, match=r"variants.plain.prompts.worker: prompts/plain-worker.md: "):
        load_matrix(matrix, 1, None)
    matrix.write_text("variants:\n  plain: {prompts: {wokrer: prompts/plain-worker.md}}\n")
    with pytest.raises(MatrixInvalid, match=r"variants.plain.prompts.wokrer: .*no prompt") as e:
        load_matrix(matrix, 1, None)
    assert "worker" in e.value.hint


def test_a_summary_in_the_results_is_recomputed_not_trusted(tmp_path):
    doc = {"format": evalreport.FORMAT, "suite": "s", "trials_per_goal": 2, "goals": [{"name": "g"}],
           "variants": [{"name": "v", "settings": {}, "workers": 1, "price": None}],
           "results": [{"variant": "v", "goal": "g", "trial": k, "passed": k == 1, "judge": "done", "wall": 1.0,
                        "tokens": 10, "tasks": 1, "landed": 1, "error": None, "timed_out": False} for k in (1, 2)],
           "summary": {"v": {"all": {"successes": 99}}}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    lines: list[str] = []
    assert command(None, trials=1, jobs=1, workers=1, matrix=None, settings=None, only="", price=None,
                   out=tmp_path / "out", workdir=None, from_file=path, say=lines.append) == 0
    rebuilt = json.loads((tmp_path / "out" / "results.json").read_text())
    assert rebuilt["summary"]["v"]["all"]["successes"] == 1 and rebuilt["summary"]["v"]["all"]["false_done"] == 1
    path.write_text("{}")
    with pytest.raises(Exception, match="not a gitswarm-eval/1 results file"):
        evalreport.read_results(path)
    doc["results"][1]["goal"] = "g | injected"  # a name that would break the table
    path.write_text(json.dumps(doc))
    with pytest.raises(Exception, match=r"results.json: results\[1\].goal: 'g \| injected' is not what"):
        evalreport.read_results(path)
    doc["results"][1]["goal"], doc["results"][0]["passed"] = "g", 1
    path.write_text(json.dumps(doc))
    with pytest.raises(Exception, match=r"results\[0\].passed: 1 is not what"):
        evalreport.read_results(path)


def test_wilson_interval():
    assert evalreport.wilson(0, 0) == (0.0, 1.0)
    low, high = evalreport.wilson(8, 10)
    assert round(low, 3) == 0.490 and round(high, 3) == 0.943
    assert evalreport.wilson(10, 10)[1] == 1.0


def test_a_bad_matrix_or_variant_is_named_before_anything_runs(tmp_path, suite):
    matrix = tmp_path / "m.yaml"
    matrix.write_text("variants:\n  a: {setings: {}}\n")
    with pytest.raises(MatrixInvalid, match=r"variants.a.setings: unknown field") as e:
        load_matrix(matrix, 2, None)
    assert "settings" in e.value.hint
    [entry] = load_suite(suite).entries
    with pytest.raises(MatrixInvalid, match=r"variant typo \(adder\): .gitswarm.yaml: .*modle: unknown setting"):
        settings_text(entry, {}, Variant("typo", {"modle": "x"}))
    with pytest.raises(MatrixInvalid, match=r"variant v \(adder\): goal: max_cycles: 0 is"):
        goal_text(entry, Variant("v", goal={"max_cycles": 0}))
    text = goal_text(entry, Variant("v", goal={"budget": 1000}))
    assert text.startswith("---\nmax_cycles: 1\nbudget: 1000\n---\n") and text.endswith("Write add(a, b) in add.py.\n")
    with pytest.raises(Exception, match="--only: 'nope' is no entry"):
        load_suite(suite).only(["nope"])


def test_the_builtin_suite_runs_end_to_end_against_an_oracle_and_an_idle_model(tmp_path, server):
    """Every built-in goal goes through a real hub (its goal and settings accepted by the hub's hook,
    its `test:` run by the landing train): a model that writes the reference solution
    (tests/eval_solutions/) meets all of them; one that changes nothing meets none, and its judge,
    saying done anyway, is caught every time."""
    solutions = Path(__file__).with_name("eval_solutions")

    def worker(req: Request) -> Response:
        goal = re.search(r'<goal name="([^"]+)">', req.messages[1]["content"]).group(1)
        files = sorted(p for p in (solutions / goal).rglob("*") if p.is_file())
        done = len(tool_results(req))
        if req.body["model"] == "oracle" and done < len(files):
            path = files[done]
            return tool_call("write_file", {"path": str(path.relative_to(solutions / goal)),
                                            "content": path.read_text()})
        return tool_call("finish", {"summary": "done"})

    server.route(Brain([{"title": "Solve the goal", "description": "all of it"}], judge="done", worker=worker))
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text("variants:\n  oracle: {settings: {defaults: {model: oracle}}}\n"
                      "  idle: {settings: {defaults: {model: idle}}}\n")
    doc = run_eval(None, tmp_path / "out", [], settings=settings_file(tmp_path, server), matrix=matrix, jobs=2)
    oracle, idle = doc["summary"]["oracle"]["all"], doc["summary"]["idle"]["all"]
    failed = [(r["goal"], r["error"], r["check_output"]) for r in doc["results"]
              if r["variant"] == "oracle" and not r["passed"]]
    assert not failed
    assert (oracle["successes"], oracle["trials"], oracle["false_done"], oracle["judge_accuracy"]) == (9, 9, 0, 1.0)
    assert (idle["successes"], idle["false_done"], idle["errors"]) == (0, 9, 0)
    assert all(r["landed"] == 1 for r in doc["results"] if r["variant"] == "oracle")


@pytest.mark.parametrize("links", [
    {"eval_hidden_test.py": "/etc/passwd"},
    {"sub/up": "../../etc"},
    {"a": ".", "x": "a/.."},  # inside by its words, outside through the other link
])
def test_a_tree_whose_links_leave_it_fails_its_trial_saying_why(hub, tmp_path, links):
    """A symlink on main to a path outside the tree (what an agent may commit) is not followed when
    main's final tree is exported for the hidden check: the trial fails with the reason. Links that
    stay inside are exported as they are."""
    from conftest import sh
    from gitswarm.evalcheck import export_tree
    from gitswarm.errors import GitswarmError

    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "sub").mkdir()
    (clone / "sub" / "data.txt").write_text("inside\n")
    (clone / "inside").symlink_to("sub/data.txt")
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-q", "-m", "a link in", cwd=clone)
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)
    export_tree(hub, "refs/heads/main", tmp_path / "fine")
    assert (tmp_path / "fine" / "inside").read_text() == "inside\n"
    for name, target in links.items():
        (clone / name).symlink_to(target)
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-q", "-m", "a link out", cwd=clone)
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)
    with pytest.raises(GitswarmError, match="cannot be exported safely"):
        export_tree(hub, "refs/heads/main", tmp_path / "tree")


def test_a_trial_out_of_time_is_killed_whole_and_counts_as_failed_without_a_verdict(suite, tmp_path, server):
    from fake_openai import delayed
    from gitswarm.eval import Plan, run

    def slow_worker(req: Request) -> Response:
        return delayed(120, tool_call("finish", {"summary": "too late"}))

    server.route(Brain([{"title": "Write add", "description": ""}], judge="done", worker=slow_worker))
    seen: list[dict] = []
    base = yaml.safe_load(settings_file(tmp_path, server).read_text())
    doc = run(Plan(load_suite(suite), [Variant("slow", {}, 1)], base, timeout=15.0, say=lambda _: None,
                   progress=seen.append, workdir=tmp_path / "work"))
    [result] = doc["results"]
    assert result["timed_out"] and result["judge"] is None and not result["passed"] and result["error"] is None
    assert result["landed"] == 0 and result["status"] in ("active", None)  # None: killed before it had a record
    assert [len(d["results"]) for d in seen] == [1] and doc["workdir"] == str((tmp_path / "work").resolve())
    stats = evalreport.summarize(doc)["slow"]["all"]
    assert (stats["successes"], stats["timeouts"], stats["verdicts"], stats["judge_accuracy"]) == (0, 1, 0, None)


def test_without_matplotlib_the_png_is_skipped_saying_how_to_get_it(tmp_path):
    doc = {"format": evalreport.FORMAT, "suite": "s", "trials_per_goal": 1, "goals": [{"name": "g"}],
           "variants": [{"name": "v", "settings": {}, "workers": 1, "price": None}],
           "results": [{"variant": "v", "goal": "g", "trial": 1, "passed": True, "judge": "done", "wall": 1.0,
                        "tokens": 10, "tasks": 1, "landed": 1, "error": None, "timed_out": False}]}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    blocker = tmp_path / "blocker" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    import os
    env = dict(os.environ, PYTHONPATH=str(blocker.parent))
    proc = subprocess.run([sys.executable, "-m", "gitswarm", "eval", "--from", str(tmp_path / "results.json"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no PNG: matplotlib is not installed (hint: pip install matplotlib" in proc.stdout
    assert (tmp_path / "out" / "results.md").is_file() and not (tmp_path / "out" / "results.png").exists()


def test_a_judge_that_says_continue_on_a_met_goal_is_caught_verdict_by_verdict(suite, tmp_path, server):
    """Each verdict is checked on main's tree at its time: a first `continue` on a tree that already
    passes is a false continue, though the goal ends done and met."""
    import threading

    goal = suite / "adder" / "goal.md"
    goal.write_text(goal.read_text().replace("max_cycles: 1", "max_cycles: 3"))
    said, lock = [], threading.Lock()
    inner = brain()

    def route(req: Request) -> Response | None:
        if "verdict" not in req.tools:
            return inner(req)
        with lock:
            said.append(1)
            decision = "continue" if len(said) == 1 else "done"
        return tool_call("verdict", {"decision": decision, "reasons": "scripted"})

    server.route(route)
    doc = run_eval(suite, tmp_path / "out", [], settings=settings_file(tmp_path, server))
    [result] = doc["results"]
    assert result["error"] is None, result
    assert [(v["cycle"], v["decision"], v["passed"]) for v in result["verdicts"]] == [(1, "continue", True),
                                                                                     (2, "done", True)]
    s = doc["summary"]["default"]["all"]
    assert (s["successes"], s["verdicts"], s["false_done"], s["false_continue_stop"], s["judge_accuracy"]) == \
        (1, 2, 0, 1, 0.5)


def test_a_variant_the_host_cannot_serve_fails_its_trials_saying_why_and_the_others_run(suite, tmp_path, server):
    """`endpoint: nope` passes main's own checks, but this host allows no such endpoint: serve marks
    the goal invalid; the trial fails with the reason, the next variant runs as usual."""
    server.route(brain())
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text("variants:\n  elsewhere: {settings: {defaults: {endpoint: nope, base_url: null}}}\n"
                      "  here: {}\n")
    lines: list[str] = []
    doc = run_eval(suite, tmp_path / "out", lines, settings=settings_file(tmp_path, server), matrix=matrix)
    elsewhere, here = doc["results"]
    assert elsewhere["status"] == "invalid" and "'nope' is not an endpoint this host allows" in elsewhere["reason"]
    assert not elsewhere["passed"] and elsewhere["exit"] == 1 and elsewhere["tokens"] == 0
    assert here["passed"] and here["judge"] == "done"
    assert any("elsewhere adder #1: hidden check FAILED, judge gave no verdict (goal invalid: " in ln for ln in lines)
