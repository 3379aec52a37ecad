"""The roles' prompts: Markdown templates in prompts/ (shipped in the package as
gitswarm.prompt_templates), which a repository may override with `.gitswarm/prompts/<name>.md` on
main (the caller reads those and passes them as `overrides`).

Template syntax, all of it:
- `{{name}}` (spaces inside the braces allowed: `{{ name }}`) is replaced by the variable's value.
  Values are inserted as they are, in one pass: a value holding `{{x}}` is never expanded again.
- A placeholder without a value raises PromptError naming the prompt file and the variable; so
  does a `{{` that does not open a placeholder (`{{goal name}}`, a lone `{{`). Variables the
  template does not use are fine.
- `\\{{` writes a literal `{{` (the backslash is dropped). `}}` needs no escape.

The resource package is named gitswarm.prompt_templates, not gitswarm.prompts: that is this
module's name, and a package of the same name would hide it once installed.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from .errors import GitswarmError

PACKAGE, SOURCE_FOLDER = "gitswarm.prompt_templates", "prompts"
OVERRIDE_DIR = ".gitswarm/prompts"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
ROLES = ("planner", "worker", "judge")

# What each shipped prompt is given, and the tools it names.
VARIABLES: dict[str, tuple[str, ...]] = {
    "planner": ("goal_name", "goal", "area", "depth", "max_depth", "repo_map", "tasks", "main_log"),
    "worker": ("goal_name", "goal", "task_id", "title", "description", "test_command", "main_log"),
    "judge": ("goal_name", "goal", "cycle", "tasks", "main_log", "test_result"),
    "select": ("goal_name", "goal", "task_id", "title", "description", "a", "b"),
    "conflict": ("task_id", "title", "files"),  # the worker's model, when its rebase stopped with conflicts
}
TOOLS: dict[str, tuple[str, ...]] = {
    "planner": ("create_tasks", "finish"),
    "worker": ("bash", "read_file", "write_file", "edit_file", "finish"),
    "judge": ("verdict",),
    "select": ("prefer",),
    "conflict": ("finish",),
}
# A command agent (a CLI of its own) gets `<role>-command`: the same, without gitswarm's tools; a
# role's model gets `<role>-system` as its system message: no variables, no tool named.
for _role in ROLES:
    VARIABLES[f"{_role}-command"], TOOLS[f"{_role}-command"] = VARIABLES[_role], ()
    VARIABLES[f"{_role}-system"], TOOLS[f"{_role}-system"] = (), ()


def prompt_name(role: str, command: bool) -> str:
    """The prompt a role's agent gets: `<role>-command` for a `command` agent (a program), else `<role>`."""
    return f"{role}-command" if command else role


def system_name(role: str) -> str:
    """The system message of a role's model (gitswarm's tool loop): `<role>-system`."""
    return f"{role}-system"

_TOKEN_RE = re.compile(r"\\\{\{|\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}|\{\{")
_VARIABLE_HINT = "pass it to render(), or take {{%s}} out of the prompt"


class PromptError(GitswarmError):
    """A prompt could not be rendered. Names the prompt file and, when one is at fault, the variable."""

    def __init__(self, path: str, variable: str | None, problem: str, hint: str | None = None):
        where = f"{path}: {{{{{variable}}}}}" if variable else path
        super().__init__(f"{where}: {problem}", hint)
        self.path, self.variable, self.problem = path, variable, problem


def prompt_dir() -> Path:
    """The folder of the shipped prompts: the installed package's, or the source checkout's prompts/."""
    try:
        return Path(str(resources.files(PACKAGE)))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / SOURCE_FOLDER


def names() -> list[str]:
    """The prompts shipped with gitswarm."""
    return sorted(p.stem for p in prompt_dir().glob("*.md"))


def load(name: str, overrides: dict[str, str] | None = None) -> tuple[str, str]:
    """(file, text) of prompt `name`: the repository's override when given, else the shipped one.
    The file is named for errors: `.gitswarm/prompts/<name>.md` or `prompts/<name>.md`."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PromptError(f"{SOURCE_FOLDER}/{name}.md", None, f"{name!r} is not a prompt name",
                          f"the prompts are: {', '.join(names())}")
    if overrides and name in overrides:
        return f"{OVERRIDE_DIR}/{name}.md", overrides[name]
    path = prompt_dir() / f"{name}.md"
    if not path.is_file():
        raise PromptError(f"{SOURCE_FOLDER}/{name}.md", None, "no such prompt",
                          f"the prompts are: {', '.join(names())}; a repository may add its own in "
                          f"{OVERRIDE_DIR}/")
    return f"{SOURCE_FOLDER}/{name}.md", path.read_text(encoding="utf-8")


def render(name: str, variables: dict[str, str], overrides: dict[str, str] | None = None) -> str:
    """Prompt `name` with its `{{placeholders}}` filled from `variables` (strings; numbers are
    written out). Raises PromptError naming the file and the variable when one has no value."""
    path, template = load(name, overrides)
    return fill(template, variables, path)


def fill(template: str, variables: dict[str, str], path: str = "prompt") -> str:
    """Fill a template's placeholders (the syntax is in this module's docstring)."""

    def replace(match: re.Match[str]) -> str:
        token, variable = match.group(0), match.group(1)
        if token == "\\{{":
            return "{{"
        if variable is None:
            line = template.count("\n", 0, match.start()) + 1
            raise PromptError(path, None, f"line {line}: '{{{{' does not open a placeholder like {{{{name}}}}",
                              "write \\{{ for a literal {{, or fix the placeholder's name "
                              "(letters, digits and _)")
        if variable not in variables:
            raise PromptError(path, variable, "no value given", _VARIABLE_HINT % variable)
        return _text(path, variable, variables[variable])

    return _TOKEN_RE.sub(replace, template)


def _text(path: str, variable: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise PromptError(path, variable, f"the value is {'null' if value is None else type(value).__name__}, "
                                      "not text", "pass a string (write 'none' or '' for nothing)")
