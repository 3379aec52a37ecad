"""`gitswarm demo`: the whole flow on this machine, offline, with no model. A hub with its hooks, a
project pushed to main, a goal pushed with plain `git push`, `serve` with workers on command tasks
that really edit files (all of them append to one index file, so landings race: pushes to main are
refused and the work is rebased or redone), and the judge's check. Prints what happens as it
happens, then the `git log` commands to read the run."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from . import git, names, sandbox
from .daemon import Daemon
from .install import init

GREETINGS = {"fr": "Bonjour", "de": "Hallo", "es": "Hola", "it": "Ciao", "nl": "Hallo",
             "pt": "Olá", "sv": "Hej", "pl": "Cześć"}


def goal_text() -> str:
    tasks = []
    for lang, word in GREETINGS.items():
        run = (f"sleep 0.3 && mkdir -p greetings && printf '%s\\n' '{word}' > greetings/{lang}.txt "
               f"&& printf '%s\\n' '{lang}: {word}' >> INDEX.md && echo 'wrote greetings/{lang}.txt'")
        tasks.append(f"  - title: Add the {lang} greeting\n    run: \"{run}\"\n")
    langs = " ".join(GREETINGS)
    check = f"for l in {langs}; do grep -q \\\"^$l: \\\" INDEX.md && test -s greetings/$l.txt || exit 1; done"
    return ("---\n"
            "judge: {every: 1m}\n"
            f"check: \"{check}\"\n"
            "tasks:\n" + "".join(tasks) +
            "---\n"
            "# Greet the world\n\n"
            "Add a greeting file per language under greetings/ and list each in INDEX.md.\n")


def run_demo(directory: Path | None = None, workers: int = 4, say: Callable[[str], None] = print) -> int:
    root = Path(directory or tempfile.mkdtemp(prefix="gitswarm-demo-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    hub, project = root / "hub.git", root / "project"
    if hub.exists() or project.exists():
        from .errors import GitswarmError
        raise GitswarmError(f"{root} already holds a demo", "give an empty or new --dir")
    say(f"== gitswarm demo in {root}")
    for line in init(hub):
        say(f"init: {line}")
    _git(["clone", "-q", str(hub), str(project)])
    (project / "README.md").write_text("# Greetings\n\nA tiny project that gitswarm's agents extend.\n")
    (project / "INDEX.md").write_text("# Greetings\n\n")
    _commit_push(project, "Start the project", say)
    (project / "goals").mkdir()
    (project / "goals" / "greet.md").write_text(goal_text())
    _commit_push(project, "Add the goal: greet the world", say)
    unsandboxed = sandbox.mode() == "on" and shutil.which("bwrap") is None
    if unsandboxed:  # the demo's commands are gitswarm's own, written above: nobody else pushed them
        os.environ["GITSWARM_SANDBOX"] = "off"
        say("== bubblewrap is not installed: the demo's own commands run unsandboxed (a real serve refuses "
            "to run pushed commands so: apt-get install bubblewrap)")
    say(f"== serve {hub} --workers {workers} --until-done")
    start = time.time()
    code = Daemon(hub, workers=workers, planners=1, until_done=True, name="demo", debounce=0.2,
                  log=lambda line: say(f"   {time.time() - start:5.1f}s {line}")).run()
    say(f"== finished in {time.time() - start:.1f}s (exit {code})")
    index = git.out(["show", "main:INDEX.md"], cwd=hub)
    say("INDEX.md on main:\n" + "\n".join(f"   {ln}" for ln in index.splitlines()))
    say("Read the run with git:\n"
        f"   git --git-dir {hub} log --oneline main          # the work, one commit per task\n"
        f"   git --git-dir {hub} log --oneline tasks         # every board change: add, claim, done, judge\n"
        f"   git --git-dir {hub} log -1 --format=%B main     # a worker's commit and its trailers\n"
        f"   git --git-dir {hub} show tasks:goals/greet.yaml # the goal's record and the judge's verdicts\n"
        f"   gitswarm status {hub}")
    return code


def _commit_push(project: Path, message: str, say: Callable[[str], None]) -> None:
    _git(["add", "-A"], cwd=project)
    _git(["commit", "-q", "-m", message], cwd=project)
    _git(["push", "-q", "origin", f"HEAD:{names.MAIN}"], cwd=project)
    say(f"git push: {message}")


def _git(args: list[str], cwd: Path | None = None) -> None:
    """`git <args>` as the demo's user; GitError with git's message when it fails."""
    env = git.no_git_env()
    env.setdefault("GIT_AUTHOR_NAME", "demo user")
    env.setdefault("GIT_AUTHOR_EMAIL", "demo@example.com")
    env.setdefault("GIT_COMMITTER_NAME", "demo user")
    env.setdefault("GIT_COMMITTER_EMAIL", "demo@example.com")
    git.run(args, cwd=cwd, env=env)
