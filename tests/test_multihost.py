"""Three hosts in network namespaces: the hub (a bare repository served by `git daemon`, with
`gitswarm serve --workers 0` beside it) and two worker hosts running `gitswarm worker git://...`,
each with its own mirror. A goal runs to done; the host holding the slow task is cut off mid-task:
its lease lapses on the hub, the task is taken back and done by the other host, and what the cut-off
host pushes once it is back is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import commit_all, sh
from netns import Hosts, netns_missing

SLOW = "Slow"
GOAL = """---
check: "test -s slow.txt && test -s a.txt && test -s b.txt && test -s c.txt"
tasks:
  - title: Slow
    run: "sleep 6; echo \\"slow, by $NETHOST\\" > slow.txt"
    priority: 9
  - title: Write a
    run: "echo a > a.txt"
  - title: Write b
    run: "echo b > b.txt"
  - title: Write c
    run: "echo c > c.txt"
---
Four files; one takes a while.
"""
SETTINGS = "lease: 3s\nretry_backoff: 0\n"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(netns_missing()), reason=netns_missing() or "")]


class Proc:
    """A process whose stderr lines are collected as they come."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path):
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())

    def wait_for(self, text: str, seconds: float) -> str:
        deadline = time.time() + seconds
        while time.time() < deadline:
            found = [ln for ln in self.lines if text in ln]
            if found:
                return found[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"never said {text!r}:\n" + "\n".join(self.lines[-60:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def task_file(hub: Path, title: str) -> dict:
    for line in sh("git", "ls-tree", "-r", "--name-only", "tasks", "tasks/", cwd=hub).stdout.split():
        doc = yaml.safe_load(sh("git", "show", f"tasks:{line}", cwd=hub).stdout)
        if doc["title"] == title:
            return doc
    raise AssertionError(f"no task {title!r} on the board")


def test_a_cut_off_host_loses_its_task_and_its_late_push_is_refused(hub: Path, tmp_path: Path):
    hosts = Hosts(["hub", "east", "west"])
    procs: list[Proc] = []
    try:
        project = tmp_path / "project"
        sh("git", "clone", "-q", str(hub), str(project))
        (project / "goals").mkdir()
        (project / "goals" / "files.md").write_text(GOAL)
        (project / ".gitswarm.yaml").write_text(SETTINGS)
        commit_all(project, "goal files")
        sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=project)

        def env(host: str) -> dict[str, str]:
            home = tmp_path / host
            home.mkdir(exist_ok=True)
            return {**os.environ, "HOME": str(home), "GITSWARM_CACHE": str(home / "cache"), "NETHOST": host,
                    "GITSWARM_AGENT_ENV": "NETHOST", "GITSWARM_GIT_TIMEOUT": "20"}

        python = [sys.executable, "-m", "gitswarm"]
        daemon_argv = [*python, "serve", str(hub), "--workers", "0", "--planners", "0", "--until-done", "--id", "hub"]
        git_daemon = Proc(hosts.command("hub", ["git", "daemon", "--reuseaddr", f"--base-path={hub.parent}",
                                                "--export-all", "--enable=receive-pack", "--port=9418",
                                                str(hub.parent)]), env("hub"), tmp_path)
        procs.append(git_daemon)
        daemon = Proc(hosts.command("hub", daemon_argv), env("hub"), tmp_path)
        procs.append(daemon)
        workers = {}
        for host in ("east", "west"):
            url = f"git://{hosts.hub_address(host)}/{hub.name}"
            workers[host] = Proc(hosts.command(host, [*python, "worker", url, "--workers", "1", "--id", host,
                                                      "--lease", "3s", "--poll", "0.2s", "--poll-max", "1s"]),
                                 env(host), tmp_path)
            procs.append(workers[host])

        # whoever claims the slow task is cut off while it works on it
        deadline = time.time() + 60
        while time.time() < deadline:
            if sh("git", "rev-parse", "-q", "--verify", "tasks", cwd=hub, check=False).returncode == 0:
                try:
                    slow = task_file(hub, SLOW)
                except AssertionError:
                    slow = {}
                if slow.get("status") == "claimed":
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("nobody claimed the slow task:\n" + "\n".join(daemon.lines[-40:]))
        loser = slow["claim"]["worker"].split("-")[0]
        winner = "west" if loser == "east" else "east"
        hosts.wait_for_process(loser, "sleep 6", 60)  # its agent is at work: the claim's push has returned
        hosts.cut(loser)

        # the goal still ends: the lease lapses on the hub, the other host does the task
        daemon.proc.wait(timeout=180)
        assert daemon.proc.returncode == 0, "\n".join(daemon.lines[-60:])
        done = task_file(hub, SLOW)
        assert done["status"] == "done" and done["attempts"] == 2, done
        assert done["result"]["worker"].startswith(winner), done
        assert f"slow, by {winner}" in sh("git", "show", "main:slow.txt", cwd=hub).stdout
        log = sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout
        assert f"reclaim {slow['id']}" in log, log
        workers[loser].wait_for("cannot reach the hub to land", 60)  # it finished, and kept its work

        # back on the network, its late landing is refused and it lets the task go
        main_before = sh("git", "rev-parse", "main", cwd=hub).stdout
        hosts.mend(loser)
        workers[loser].wait_for(f"lost the claim on {slow['id']}", 90)
        assert sh("git", "rev-parse", "main", cwd=hub).stdout == main_before
        landed = sh("git", "log", "--format=%(trailers:key=Gitswarm-Task,valueonly)", "main", cwd=hub).stdout.split()
        assert landed.count(slow["id"]) == 1 and len(landed) == len(set(landed)) == 4, landed

        # and a late completion pushed by hand from the cut-off host, under its old claim, too
        clone = tmp_path / "late"
        url = f"git://{hosts.hub_address(loser)}/{hub.name}"
        sh(*hosts.command(loser, ["git", "clone", "-q", "--branch", "tasks", url, str(clone)]))
        path = clone / "tasks" / slow["id"][2:4] / f"{slow['id']}.yaml"
        late = dict(done, status="done", attempts=1, result={"worker": slow["claim"]["worker"], "at": done["result"]["at"],
                                                             "summary": "late"})
        path.write_text(yaml.safe_dump(late, sort_keys=False))
        commit_all(clone, f"done {slow['id']}\n\nGitswarm-Action: complete\nGitswarm-Task: {slow['id']}\n"
                          f"Gitswarm-Worker: {slow['claim']['worker']}\nGitswarm-Token: {slow['claim']['token']}")
        tip = sh("git", "rev-parse", "tasks", cwd=hub).stdout
        pushed = sh(*hosts.command(loser, ["git", "-C", str(clone), "push", "origin", "HEAD:refs/heads/tasks"]),
                    check=False)
        assert pushed.returncode != 0 and "remote: gitswarm: rejected refs/heads/tasks" in pushed.stderr, pushed.stderr
        assert sh("git", "rev-parse", "tasks", cwd=hub).stdout == tip
        status = json.loads(sh(sys.executable, "-m", "gitswarm", "status", str(hub), "--json").stdout)
        assert sorted(t["status"] for t in status["tasks"]) == ["done"] * 4
    finally:
        for p in reversed(procs):
            p.stop()
        hosts.close()
