"""One task of a list someone writes: the items of `gitswarm task add --from FILE` and of a
planner's create_tasks (its tool call, or its command's tasks file). Their fields are a task
file's (gitswarm/task.py), checked with the one toolkit (gitswarm/validate.py) before anything is
made of them, each named by where it sits (`item 2.priority`, `tasks[0].kind`), with the error
class the caller chooses: FileInvalid for a person's file, the tool's error for a model."""

from __future__ import annotations

from typing import Any

from . import task as T
from .names import ID_RE, NAME_RE
from .text import TEXT_MAX
from .validate import Fields, typename

KEYS = ("title", "description", "kind", "depends_on", "priority", "goal", "parent", "id")
_NAMES = {"goal": (NAME_RE, "a goal's name: letters, digits, '.', '_', '@' or '-'"),
          "parent": (ID_RE, "a task id"),
          "id": (ID_RE, "t- then 2 to 48 lowercase letters, digits or dashes")}


class ItemFields(Fields):
    """The checks of a task list's items."""

    def item(self, where: str, value: Any, keys: tuple[str, ...] = KEYS, titles: bool = False) -> dict[str, Any]:
        """new_task's arguments for the item at `where` (task_id for its `id`), defaults filled in
        for fields left out or null. Only `keys` may be given. depends_on holds task ids, or with
        `titles` ids and titles (which the caller resolves)."""
        shape = f"write `- title: ...` with optional {', '.join(k for k in keys if k != 'title')}"
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping with at least a title, not {typename(value)}", shape)
        if "title" not in value:
            raise self.fail(where, "needs at least a title", shape)
        self.known_keys(where, value, keys, "a task holds")

        def given(key: str, default: Any) -> Any:
            return default if value.get(key) is None else value[key]

        what = "task titles or ids" if titles else "task ids"
        if titles:
            def dependency(name: str, ref: Any) -> str:
                return self.text(name, ref, T.TITLE_MAX, required=True, single_line=True,
                                 hint="name a task by its title or id")
        else:
            def dependency(name: str, ref: Any) -> str:
                return self.name(name, ref, ID_RE, "a task id")
        out: dict[str, Any] = {
            "title": self.text(f"{where}.title", value["title"], T.TITLE_MAX, required=True, single_line=True),
            "description": self.text(f"{where}.description", given("description", ""), TEXT_MAX),
            "kind": self.choice(f"{where}.kind", given("kind", "work"), T.KINDS),
            "priority": self.integer(f"{where}.priority", given("priority", 0), *T.PRIORITY_RANGE),
            "depends_on": self.list_of(f"{where}.depends_on", given("depends_on", []), dependency, T.DEPENDS_MAX,
                                       what, f"write depends_on: [{'<title or id>' if titles else '<id>'}, ...]"),
        }
        for key, (regex, what) in _NAMES.items():
            if key in keys and value.get(key) is not None:
                out["task_id" if key == "id" else key] = self.name(f"{where}.{key}", value[key], regex, what)
        return out
