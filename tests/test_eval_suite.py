"""The built-in eval suite (gitswarm/evalsuites/builtin) validates: every entry's snapshot, goal
and hidden check parse; the hidden check, run in the sandbox as `gitswarm eval` runs it, fails on
the untouched snapshot and passes on a reference solution kept here, in tests/eval_solutions/
(never in the package: agents must not find the answers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitswarm import sandbox
from gitswarm.evalsuite import SuiteInvalid, copy_tree, hidden_check, load_entry, load_suite
from gitswarm.goal import parse_goal

SOLUTIONS = Path(__file__).with_name("eval_solutions")
SUITE = load_suite()


def test_the_builtin_suite_has_graded_goals_of_every_kind():
    assert SUITE.name == "builtin" and len(SUITE.entries) >= 8
    kinds = {e.kind for e in SUITE.entries}
    assert {"function", "multi-file", "bugfix", "refactor", "planning"} <= kinds
    assert [e.difficulty for e in SUITE.entries] == sorted(e.difficulty for e in SUITE.entries)
    assert len({e.difficulty for e in SUITE.entries}) >= 4
    assert sorted(p.name for p in SOLUTIONS.iterdir()) == sorted(e.name for e in SUITE.entries)
    for entry in SUITE.entries:
        goal = parse_goal(entry.goal_path, entry.goal_text)
        assert goal.check is None, f"{entry.name}: the judge must judge, not a check: command"
        assert entry.snapshot.is_dir() and any(entry.snapshot.iterdir())
        assert not (entry.snapshot / "goals").exists()


@pytest.mark.parametrize("entry", SUITE.entries, ids=lambda e: e.name)
def test_the_hidden_check_fails_on_the_snapshot_and_passes_on_the_reference(entry, tmp_path):
    untouched = tmp_path / "untouched"
    copy_tree(entry.snapshot, untouched)
    passed, output = hidden_check(entry, untouched)
    assert not passed, output
    solved = tmp_path / "solved"
    copy_tree(entry.snapshot, solved)
    copy_tree(SOLUTIONS / entry.name, solved)
    passed, output = hidden_check(entry, solved)
    assert passed, output
    if (solved / "tests").is_dir() or "test:" in entry.goal_text:  # the visible tests stay green both ways
        goal = parse_goal(entry.goal_path, entry.goal_text)
        for tree in (untouched, solved):
            from gitswarm.proc import run_killable
            ran = run_killable(sandbox.wrap(["/bin/sh", "-c", goal.test], tree), tree, sandbox.agent_env(), 120,
                               merge=True)
            assert ran.code == 0, ran.stdout


def test_sandboxed_agents_never_see_the_shipped_suites(tmp_path):
    from gitswarm.proc import run_killable

    probe = f"test -f {sandbox.PACKAGE}/sandbox.py && ls -A {sandbox.EVAL_SUITES} | wc -l"  # the package, not them
    ran = run_killable(sandbox.wrap(["/bin/sh", "-c", probe], tmp_path), tmp_path, sandbox.agent_env(), 60,
                       merge=True)
    assert ran.code == 0 and ran.stdout.strip() == "0", ran.stdout


def test_a_broken_entry_is_named_with_its_file_field_and_fix(tmp_path):
    entry = tmp_path / "bad"
    (entry / "repo").mkdir(parents=True)
    (entry / "goal.md").write_text("# A goal\n")
    (entry / "entry.yaml").write_text("chek: true\n")
    with pytest.raises(SuiteInvalid) as e:
        load_entry(entry)
    assert "entry.yaml: chek: unknown field" in e.value.message and "check" in e.value.hint
    (entry / "entry.yaml").write_text("check: 'true'\ndifficulty: 9\n")
    with pytest.raises(SuiteInvalid, match="difficulty: 9 is not a whole number"):
        load_entry(entry)
    (entry / "entry.yaml").write_text("check: 'true'\n")
    (entry / "goal.md").write_text("---\njudge: {every: soon}\n---\n# A goal\n")
    with pytest.raises(SuiteInvalid, match=r"goal.md: judge.every"):
        load_entry(entry)


def test_a_module_an_agent_names_like_the_standard_library_s_does_not_pass_the_check(tmp_path):
    """unittest.py that exits 0, committed beside the code: the hidden check still fails (it runs
    as `python3 -I`, the tree's modules after the library's)."""
    for entry in SUITE.entries:
        tree = tmp_path / entry.name
        copy_tree(entry.snapshot, tree)
        (tree / "unittest.py").write_text("raise SystemExit(0)\n")
        passed, output = hidden_check(entry, tree)
        assert not passed, (entry.name, output)
