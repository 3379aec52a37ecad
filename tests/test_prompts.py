"""The roles' prompts: each renders with its documented variables and names its tools; a missing
variable fails loudly; a repository's override wins; the installed package finds the files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitswarm import prompts as P
from gitswarm.prompts import PromptError, fill, render

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "prompts"

# The tool set each role is given, as its prompt must spell it.
SIGNATURES = {
    "planner": ["create_tasks(tasks: [{title, description, kind, depends_on, priority}])", "finish(summary)"],
    "worker": ["bash(command)", "read_file(path)", "write_file(path, content)", "edit_file(path, old, new)",
               "finish(summary)"],
    "judge": ["verdict(decision, reasons)"],
    "select": ["prefer(attempt, reasons)"],
}


def values(name: str) -> dict[str, str]:
    return {v: f"<<{v.upper()}>>" for v in P.VARIABLES[name]}


def test_the_shipped_prompts():
    assert P.names() == ["conflict", "judge", "judge-command", "judge-system", "planner", "planner-command",
                         "planner-system", "select", "worker", "worker-command", "worker-system"]
    assert sorted(P.VARIABLES) == sorted(P.TOOLS) == P.names()
    assert sorted(SIGNATURES) == ["judge", "planner", "select", "worker"]
    # installed, or a source checkout: either way the files are the source's
    for name in P.names():
        assert (P.prompt_dir() / f"{name}.md").read_text() == (SOURCE / f"{name}.md").read_text()


@pytest.mark.parametrize("name", ["planner", "worker", "judge", "select"])
def test_each_prompt_uses_exactly_its_documented_variables(name: str):
    template = (SOURCE / f"{name}.md").read_text(encoding="utf-8")
    used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", template))
    assert used == set(P.VARIABLES[name])
    text = render(name, values(name))
    for value in values(name).values():
        assert value in text
    assert "{{" not in text and "}}" not in text


@pytest.mark.parametrize("name", ["planner", "worker", "judge", "select"])
def test_each_prompt_names_its_tools(name: str):
    text = render(name, values(name))
    for signature in SIGNATURES[name]:
        assert signature in text, signature
    for tool in P.TOOLS[name]:
        assert f"`{tool}(" in text
    others = {t for role, tools in P.TOOLS.items() if role != name for t in tools} - set(P.TOOLS[name])
    for tool in others:  # no tool of another role is offered
        assert f"{tool}(" not in text, tool


def test_the_planner_explains_kinds_depth_and_dependencies():
    text = render("planner", {**values("planner"), "depth": "1", "max_depth": "2"})
    assert "`work`" in text and "`plan`" in text
    assert "only while your depth (1) is less than the deepest allowed (2)" in text
    assert "titles of tasks in the same" in text and "ids of tasks that already exist" in text


def test_the_judge_explains_its_three_decisions():
    text = render("judge", values("judge"))
    for decision in ("`continue`", "`done`", "`stop`"):
        assert decision in text


OLD_CONFLICT = """Rebasing your work for task {task_id} ({title}) onto the new tip of main stopped with
conflicts in these files:
{files}
Edit them to remove every conflict marker (<<<<<<<, =======, >>>>>>>), keeping the intent of both
main's change and yours. Do not run git yourself. Call finish(summary) when the files are resolved."""
OLD_SYSTEM = {
    "planner": "You are a gitswarm planner: you turn a goal into tasks for coding agents.",
    "worker": "You are a gitswarm worker: you carry out one task in a git repository.",
    "judge": "You are a gitswarm judge: you decide whether a goal is met.",
}


def test_the_conflict_and_system_prompts_are_files_with_the_text_they_had_in_code():
    """Moved from roles/worker.py (CONFLICT_PROMPT) and roles/__init__.py (SYSTEM) into prompts/:
    the text a model gets is the same, to the byte."""
    given = {"task_id": "t-1", "title": "Fix {x} & co", "files": "- a.py\n- b/c.txt"}
    assert render("conflict", given) == OLD_CONFLICT.format(**given)
    assert set(re.findall(r"\{\{\s*(\w+)\s*\}\}", (SOURCE / "conflict.md").read_text())) == set(P.VARIABLES["conflict"])
    for role, text in OLD_SYSTEM.items():
        assert P.system_name(role) == f"{role}-system" and render(P.system_name(role), {}) == text
        assert P.VARIABLES[P.system_name(role)] == P.TOOLS[P.system_name(role)] == ()


def test_the_check_of_overrides_knows_the_moved_prompts():
    """A hub may override the conflict and system prompts like the others (.gitswarm/prompts/);
    `gitswarm check` and the hub's guard check them against what they are given."""
    from gitswarm.check import check_file

    assert check_file(".gitswarm/prompts/worker-system.md", b"You are terse.\n") == []
    assert check_file(".gitswarm/prompts/conflict.md", b"Resolve {{files}} of {{task_id}} ({{title}}).\n") == []
    [problem] = check_file(".gitswarm/prompts/judge-system.md", b"Judge {{goal}}.\n")
    assert str(problem).startswith(".gitswarm/prompts/judge-system.md: {{goal}}: the judge-system prompt is given "
                                   "no such variable")
    [problem] = check_file(".gitswarm/prompts/conflict.md", b"Resolve {{file}}.\n")
    assert "did you mean 'files'?" in str(problem)


def test_a_missing_variable_fails_loudly():
    partial = values("worker")
    del partial["test_command"]
    with pytest.raises(PromptError) as raised:
        render("worker", partial)
    e = raised.value
    assert (e.path, e.variable) == ("prompts/worker.md", "test_command")
    assert str(e) == ("prompts/worker.md: {{test_command}}: no value given\n"
                      "hint: pass it to render(), or take {{test_command}} out of the prompt")


def test_unused_variables_and_numbers_are_fine():
    text = render("planner", {**values("planner"), "depth": 0, "max_depth": 2, "extra": "unused"})
    assert "depth 0" in text


@pytest.mark.parametrize("value", [None, True, ["a"], {"a": 1}])
def test_a_value_that_is_not_text_fails(value: object):
    with pytest.raises(PromptError) as raised:
        render("judge", {**values("judge"), "cycle": value})
    assert raised.value.variable == "cycle" and "hint:" in str(raised.value)


def test_an_override_wins_and_is_named_in_errors():
    assert render("judge", {"goal": "G"}, {"judge": "Judge {{goal}}."}) == "Judge G."
    assert render("worker", values("worker"), {"judge": "other"}) == render("worker", values("worker"))
    with pytest.raises(PromptError) as raised:
        render("judge", {}, {"judge": "Judge {{goal}}."})
    assert raised.value.path == ".gitswarm/prompts/judge.md"
    assert str(raised.value).startswith(".gitswarm/prompts/judge.md: {{goal}}: no value given")
    assert render("reviewer", {"x": "1"}, {"reviewer": "{{x}}"}) == "1"  # a prompt of the repository's own


def test_unknown_and_malformed_prompt_names():
    with pytest.raises(PromptError) as raised:
        render("reviewer", {})
    assert str(raised.value).startswith("prompts/reviewer.md: no such prompt")
    assert "conflict, judge, judge-command, judge-system, planner, planner-command, planner-system, select, " \
           "worker, worker-command, worker-system" in str(raised.value)
    with pytest.raises(PromptError, match="is not a prompt name"):
        render("../pyproject", {})


def test_template_syntax():
    assert fill("{{a}} and {{ a }} and {{  b_2 }}", {"a": "1", "b_2": "2"}) == "1 and 1 and 2"
    assert fill("{{a}}", {"a": "{{b}}", "b": "no"}) == "{{b}}"  # values are never expanded again
    assert fill(r"\{{a}} is literal, {{a}} is not", {"a": "x"}) == "{{a}} is literal, x is not"
    assert fill("}} and { single } braces", {}) == "}} and { single } braces"
    assert fill(r"a lone \{{", {}) == "a lone {{"


@pytest.mark.parametrize("template", ["{{goal name}}", "{{", "x {{1x}}", "{{a-b}}"])
def test_a_brace_pair_that_opens_no_placeholder_fails(template: str):
    with pytest.raises(PromptError) as raised:
        fill(f"first line\n{template}", {"goal": "g", "a": "", "b": ""}, "p.md")
    assert str(raised.value).startswith("p.md: line 2: '{{' does not open a placeholder")
    assert "\\{{" in raised.value.hint


# ---------------------------------------------------------------- shipped in the package

def _build(tmp_path: Path) -> Path:
    """Build the package the way an install does (setuptools build_py) into tmp_path/lib."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("gitswarm", "hooks", "tasks", "prompts"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    lib = tmp_path / "lib"
    proc = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()",
                           "-q", "build_py", "--build-lib", str(lib)],
                          cwd=src, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return lib


def test_the_built_package_ships_and_finds_the_prompts(tmp_path: Path):
    lib = _build(tmp_path)
    for name in ("planner", "worker", "judge"):
        assert (lib / "gitswarm" / "prompt_templates" / f"{name}.md").read_bytes() == \
            (SOURCE / f"{name}.md").read_bytes()
    code = (
        "import json, sys, gitswarm, gitswarm.prompts as P\n"
        "from importlib.resources import files\n"
        "json.dump({'module': gitswarm.__file__, 'prompts_module': P.__file__,\n"
        "           'dir': str(P.prompt_dir()), 'names': P.names(),\n"
        "           'resource': files('gitswarm.prompt_templates').joinpath('judge.md').read_text('utf-8'),\n"
        "           'worker': P.render('worker', {v: v.upper() for v in P.VARIABLES['worker']})},\n"
        "          sys.stdout)\n")
    env = {"PYTHONPATH": str(lib), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert Path(got["module"]).is_relative_to(lib)
    assert Path(got["prompts_module"]) == lib / "gitswarm" / "prompts.py"  # not hidden by the templates
    assert Path(got["dir"]).resolve() == (lib / "gitswarm" / "prompt_templates").resolve()
    assert got["names"] == ["conflict", "judge", "judge-command", "judge-system", "planner", "planner-command",
                             "planner-system", "select", "worker", "worker-command", "worker-system"]
    assert got["resource"] == (SOURCE / "judge.md").read_text(encoding="utf-8")
    assert got["worker"] == render("worker", {v: v.upper() for v in P.VARIABLES["worker"]})


@pytest.mark.parametrize("role", ["planner", "worker", "judge"])
def test_a_command_agent_gets_a_prompt_without_gitswarms_tools(role: str):
    """A CLI agent has its own tools: its prompt names none of gitswarm's, and says how it answers
    (the result file; the planner's tasks file; the judge's exit status)."""
    name = P.prompt_name(role, True)
    assert name == f"{role}-command" and P.prompt_name(role, False) == role
    text = render(name, values(role))
    for tool in {t for tools in P.TOOLS.values() for t in tools}:
        assert f"`{tool}(" not in text and f"{tool}(" not in text, tool
    assert "GITSWARM_RESULT_FILE" in text
    assert {"planner": "GITSWARM_TASKS_FILE", "worker": "FAILED:", "judge": "status 0"}[role] in text
