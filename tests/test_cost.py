"""What a run costs: a role's `price` (USD per million tokens in and out) puts a cost on each agent
run, summed on the task's result (every attempt's) and on the goal's record (planners' and judge's);
`status`, its JSON and the report show it. Without a price, the cost is what the endpoint said, and
unknown stays unknown (never $0)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gitswarm import record as R
from gitswarm import task as T
from gitswarm.config import ConfigInvalid, load_config
from gitswarm.errors import TaskInvalid

from test_e2e_openai import GOAL, Brain, board_tasks, push_files, run_daemon, server, settings  # noqa: F401

PRICED = "  price: {input: 2, output: 8}\n"
PER_REPLY = (10 * 2 + 5 * 8) / 1e6  # the fake endpoint's replies: 10 tokens in, 5 out


def test_a_priced_run_puts_its_cost_on_tasks_records_status_and_the_report(hub, tmp_path, server):
    server.route(Brain([{"title": "Write hello", "description": "create hello"},
                        {"title": "Write world", "description": "create world"}]))
    push_files(hub, tmp_path, {".gitswarm.yaml": settings(server) + PRICED, "README.md": "project\n"})
    push_files(hub, tmp_path, {"goals/hello.md": GOAL}, "add goal hello")
    assert run_daemon(hub) == 0
    tasks, records = board_tasks(hub)
    for t in tasks:  # each reply of its worker at the price: 15 tokens, $0.00006
        assert t.result["cost"] == pytest.approx(t.result["tokens"] / 15 * PER_REPLY), t.result
    rec = records["hello"]
    assert rec.cost == pytest.approx(rec.tokens / 15 * PER_REPLY) and rec.cost > 0
    assert rec.verdicts[-1].cost == pytest.approx(rec.verdicts[-1].tokens / 15 * PER_REPLY)
    total = rec.cost + sum(t.result["cost"] for t in tasks)
    shown = subprocess.run([sys.executable, "-m", "gitswarm", "status", str(hub)], capture_output=True, text=True,
                           cwd=tmp_path)
    assert f"${total:.4f}" in shown.stdout, shown.stdout
    doc = json.loads(subprocess.run([sys.executable, "-m", "gitswarm", "status", str(hub), "--json"],
                                    capture_output=True, text=True, cwd=tmp_path).stdout)
    assert doc["goals"][0]["cost"] == pytest.approx(total)
    page = tmp_path / "run.html"
    subprocess.run([sys.executable, "-m", "gitswarm", "report", str(hub), "-o", str(page)], check=True,
                   capture_output=True, cwd=tmp_path)
    html = page.read_text()
    assert "Cost by role" in html and f"${total:.4f}" in html


def test_without_a_price_the_cost_stays_unknown(hub, tmp_path, server):
    server.route(Brain([{"title": "Write hello", "description": "create hello"}]))
    push_files(hub, tmp_path, {".gitswarm.yaml": settings(server), "README.md": "project\n"})
    push_files(hub, tmp_path, {"goals/hello.md": GOAL}, "add goal hello")
    assert run_daemon(hub) == 0
    tasks, records = board_tasks(hub)
    assert all("cost" not in t.result for t in tasks) and records["hello"].cost is None
    assert "cost" not in R.dump(records["hello"]).decode()
    shown = subprocess.run([sys.executable, "-m", "gitswarm", "status", str(hub)], capture_output=True, text=True,
                           cwd=tmp_path).stdout
    assert "$" not in shown, shown


@pytest.mark.parametrize("price, field, words", [
    ("{input: 2}", "worker.price", "needs both input and output"),
    ("{input: 2, outptu: 8}", "worker.price.outptu", "did you mean 'output'"),
    ("{input: -1, output: 8}", "worker.price.input", "from 0 to 10000"),
    ("cheap", "worker.price", "USD per million tokens"),
])
def test_a_bad_price_is_named_with_its_fix(price, field, words):
    with pytest.raises(ConfigInvalid) as e:
        load_config(f"worker:\n  price: {price}\n", ".gitswarm.yaml", None)
    assert field in str(e.value) and words in f"{e.value} {e.value.hint}", (str(e.value), e.value.hint)
    assert load_config("defaults: {price: 1.5}\n", ".gitswarm.yaml", None).judge.price == (1.5, 1.5)


def test_a_cost_on_the_board_is_checked_like_any_field():
    from gitswarm import rules

    task = rules.complete(rules.claim(T.new_task("T"), "w"), "w", "s", cost=0.25)
    path = T.task_path(task.id)
    assert T.parse(T.dump(task), path).result["cost"] == 0.25
    for bad in (b"-1", b"'a lot'", b".nan", b"true"):
        with pytest.raises(TaskInvalid) as e:
            T.parse(T.dump(task).replace(b"cost: 0.25", b"cost: " + bad), path)
        assert "result.cost" in str(e.value)
    old = R.new_record("g", None)  # a record from before costs were kept parses, and stays without one
    text = R.dump(old)
    assert b"cost" not in text and R.parse(text, "goals/g.yaml").cost is None
    with pytest.raises(TaskInvalid) as e:
        R.parse(text.replace(b"verdicts: []", b"verdicts: []\ncost: -3"), "goals/g.yaml")
    assert "cost" in str(e.value)
