"""Mistakes in goal files and .gitswarm.yaml refused at push, all at once, with "did you mean", and
the same checks by `gitswarm check` in a clone before the push. Real hub, real clone, real `git push`
through the installed pre-receive hook; the command line in a process of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import gitswarm, sh

GOOD = """---
test: pytest -q
judge: {every: 5m}
tasks:
  - title: Write a
    run: "echo a > a.txt"
---
# A goal
Write a.
"""
TYPO_GOAL = "---\nmodels:\n  worker: {modle: gpt-4o}\n---\nDo it.\n"
TYPO_SETTINGS = "modle: gpt-4o\nworker:\n  max_steps: 80\n"


def clone_of(hub: Path, tmp_path: Path) -> Path:
    path = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(path))
    return path


def write(clone: Path, files: dict[str, str | bytes]) -> None:
    """Write the files in the clone and commit everything there is."""
    for path, data in files.items():
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        (clone / path).write_bytes(data.encode() if isinstance(data, str) else data)
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-q", "-m", "goals and settings", cwd=clone)


def main_tip(hub: Path) -> str | None:
    return sh("git", "rev-parse", "-q", "--verify", "refs/heads/main", cwd=hub, check=False).stdout.strip() or None


def push(clone: Path):
    return sh("git", "push", "origin", "HEAD:refs/heads/main", cwd=clone, check=False)


def test_a_typo_is_refused_at_push_with_did_you_mean_and_main_unchanged(hub: Path, tmp_path: Path) -> None:
    clone = clone_of(hub, tmp_path)
    write(clone, {".gitswarm.yaml": TYPO_SETTINGS})
    before = main_tip(hub)
    result = push(clone)
    assert result.returncode != 0
    assert "remote: gitswarm: rejected refs/heads/main: 1 problem(s)" in result.stderr, result.stderr
    assert "remote: gitswarm:   .gitswarm.yaml: modle: unknown setting" in result.stderr
    assert "did you mean 'model'?" in result.stderr
    assert main_tip(hub) == before
    # the same mistake in a goal's models: names the goal file and the field in full
    (clone / ".gitswarm.yaml").unlink()
    write(clone, {"goals/x.md": TYPO_GOAL})
    result = push(clone)
    assert result.returncode != 0 and main_tip(hub) == before
    assert "goals/x.md: models.worker.modle: unknown setting" in result.stderr, result.stderr
    assert "did you mean 'model'?" in result.stderr


def test_every_problem_of_every_file_in_one_refusal(hub: Path, tmp_path: Path) -> None:
    clone = clone_of(hub, tmp_path)
    write(clone, {
        "goals/one.md": "---\nbudjet: 100\nmax_cycles: 0\n---\nDo one.\n",
        "goals/two.md": "---\njudge: {every: soon}\n---\nDo two.\n",
        ".gitswarm.yaml": "lease: forever\nworker: {max_step: 3}\nworkers: 0\n",
        "goals/fine.md": GOOD,
    })
    result = push(clone)
    assert result.returncode != 0 and main_tip(hub) is None
    err = result.stderr
    for fragment in ("goals/one.md: budjet: unknown field", "did you mean 'budget'?",
                     "goals/one.md: max_cycles: 0 is out of range",
                     "goals/two.md: judge.every: 'soon' is not a duration",
                     ".gitswarm.yaml: lease: 'forever' is not a duration",
                     ".gitswarm.yaml: worker.max_step: unknown setting", "did you mean 'max_steps'?",
                     ".gitswarm.yaml: workers: 0 is out of range",
                     "rejected refs/heads/main: 6 problem(s)"):
        assert fragment in err, (fragment, err)
    assert "fine.md" not in err
    # `gitswarm check` on the same tree says the same, and exits 1
    local = gitswarm("check", str(clone), check=False)
    assert local.returncode == 1
    assert "6 problem(s) in 4 file(s)" in local.stdout
    for fragment in ("goals/one.md: budjet: unknown field", "goals/two.md: judge.every",
                     ".gitswarm.yaml: worker.max_step: unknown setting", "hint: did you mean 'max_steps'?"):
        assert fragment in local.stdout, (fragment, local.stdout)


def test_a_valid_goal_is_accepted_and_checks_clean(hub: Path, tmp_path: Path) -> None:
    clone = clone_of(hub, tmp_path)
    write(clone, {"goals/fine.md": GOOD, ".gitswarm.yaml": "model: gpt-4o\nworker: {max_steps: 80}\n",
                  ".gitswarm/prompts/worker.md": "Do {{title}} for {{ goal_name }}; write \\{{x}} as is.\n",
                  ".gitswarm/prompts/README.md": "{{ notes", "goals/README.md": "not a goal: {{{",
                  "src/notes.yaml": "[unchecked"})
    local = gitswarm("check", str(clone))
    assert "ok: 3 file(s) checked" in local.stdout
    result = push(clone)
    assert result.returncode == 0, result.stderr
    assert main_tip(hub) == sh("git", "rev-parse", "HEAD", cwd=clone).stdout.strip()


def test_only_what_the_push_changes_is_checked(hub: Path, tmp_path: Path) -> None:
    """A goal already on main that is invalid (put there before the hub checked, by plumbing that runs
    no hook) does not block an unrelated push; a push that fixes it, or deletes it, goes through."""
    clone = clone_of(hub, tmp_path)
    write(clone, {"goals/fine.md": GOOD})
    assert push(clone).returncode == 0
    blob = sh("git", "hash-object", "-w", "--stdin", cwd=hub, input="---\nmax_cycles: many\n---\nOld.\n").stdout
    goals = sh("git", "rev-parse", "main:goals", cwd=hub).stdout.strip()
    listing = sh("git", "ls-tree", goals, cwd=hub).stdout + f"100644 blob {blob.strip()}\told.md\n"
    new_goals = sh("git", "mktree", cwd=hub, input=listing).stdout.strip()
    tree = sh("git", "mktree", cwd=hub, input=f"040000 tree {new_goals}\tgoals\n").stdout.strip()
    commit = sh("git", "commit-tree", tree, "-p", "main", "-m", "old goal", cwd=hub).stdout.strip()
    sh("git", "update-ref", "refs/heads/main", commit, cwd=hub)
    sh("git", "pull", "-q", "origin", "main", cwd=clone)
    assert gitswarm("check", str(clone), check=False).returncode == 1  # locally, the whole tree is checked
    write(clone, {"notes.txt": "unrelated\n"})
    assert push(clone).returncode == 0
    (clone / "goals" / "old.md").unlink()
    write(clone, {})
    assert push(clone).returncode == 0


@pytest.mark.parametrize("files, fragment", [
    ({"goals/x.md": "---\nmax_cycles: 3\n"}, "goals/x.md: the front matter opened by --- on line 1 is never closed"),
    ({".gitswarm.yaml": "- a list\n"}, ".gitswarm.yaml: must hold a YAML mapping, not list"),
    ({".gitswarm.yaml": "worker: {backend: command}\n"}, ".gitswarm.yaml: worker.command: required when backend"),
    ({"goals/x.md": "---\ntasks:\n  - {title: A, rnu: make}\n---\nGo.\n"}, "did you mean 'run'?"),
    ({".gitswarm/prompts/worker.md": "Do {{ titel }}.\n"}, ".gitswarm/prompts/worker.md: {{titel}}: the worker "
     "prompt is given no such variable"),
    ({".gitswarm/prompts/worker.md": "Do {{ titel }}.\n"}, "did you mean 'title'?"),
    ({".gitswarm/prompts/wroker.md": "Do it.\n"}, "overrides no prompt of gitswarm's"),
    ({".gitswarm/prompts/judge.md": "{{goal name}}\n"}, "line 1: '{{' does not open a placeholder"),
])
def test_whole_file_and_nested_mistakes(hub: Path, tmp_path: Path, files: dict[str, str], fragment: str) -> None:
    clone = clone_of(hub, tmp_path)
    write(clone, files)
    result = push(clone)
    assert result.returncode != 0 and fragment in result.stderr, result.stderr
    assert fragment in gitswarm("check", str(clone), check=False).stdout


def test_check_in_the_current_folder_with_nothing_to_check(tmp_path: Path) -> None:
    result = gitswarm("check", cwd=tmp_path)
    assert result.stdout.strip() == "ok: 0 file(s) checked"


def test_one_validator_two_modes() -> None:
    """parse_goal and load_config raise the first problem; goal_errors and config_errors, the same
    checks, return them all (pure: no repository)."""
    from gitswarm.config import ConfigInvalid, config_errors, load_config
    from gitswarm.goal import GoalInvalid, goal_errors, parse_goal

    text = "---\nbudjet: 1\nmax_cycles: 0\ntrain: {bacth: 2}\n---\n\n"
    with pytest.raises(GoalInvalid) as first:
        parse_goal("goals/x.md", text)
    every = goal_errors("goals/x.md", text)
    assert str(first.value) == str(every[0])
    assert [e.field for e in every] == ["budjet", "body", "train.bacth", "max_cycles"]
    assert "did you mean 'batch'?" in every[2].hint
    assert goal_errors("goals/x.md", GOOD) == []
    settings = "defaults: {modle: x, max_steps: 0}\nworker: {backend: command}\ndebounce: -1\n"
    with pytest.raises(ConfigInvalid) as first:
        load_config(settings)
    every = config_errors(settings)
    assert str(first.value) == str(every[0])
    assert [e.field for e in every] == ["defaults.modle", "defaults.max_steps", "worker.command", "debounce"]
    # the host's endpoints are the host's to check: a name this machine does not list is not main's mistake
    assert config_errors("worker: {endpoint: the-hubs-own}\n") == []
    with pytest.raises(ConfigInvalid, match="the-hubs-own"):
        load_config("worker: {endpoint: the-hubs-own}\n")
