"""YAML files people write (`.gitswarm.yaml`, goals' front matter, a host's endpoints file) loaded
as plain data, with errors that name the file and the field."""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable, TypeVar

import yaml

from .errors import FileInvalid

try:  # libyaml when available, as in gitswarm.task
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

Fail = Callable[[str | None, str, str | None], Exception]  # (field, problem, hint) -> the error to raise
MAX_DEPTH = 32  # mappings and lists nested deeper are refused before they are built (a parser's recursion)
T = TypeVar("T")


def load_yaml(text: str, path: str, fail: Fail | None = None, max_bytes: int = 64 * 1024) -> Any:
    """Load YAML as plain data, refusing what safe_load would quietly accept: tags, anchors and
    aliases (YAML bombs among them), collections nested over MAX_DEPTH deep, and a key given twice
    in one mapping (the last would win unseen). `fail(field, problem, hint)` makes the error
    raised (default: FileInvalid)."""
    fail = fail or (lambda field, problem, hint=None: FileInvalid(path, field, problem, hint))
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise fail(None, f"is {size} bytes; the limit is {max_bytes}", "make it shorter")
    frames: list[list[Any]] = []  # per open collection: [keys seen or None for a list, key or index, at a key]
    try:
        for event in yaml.parse(text, Loader=_Loader):
            is_key = False
            if isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent, yaml.AliasEvent)) and frames:
                top = frames[-1]
                if top[0] is None:  # an item of a list
                    top[1] += 1
                elif top[2]:  # a key of a mapping
                    is_key, top[2] = True, False
                    if isinstance(event, yaml.ScalarEvent):
                        top[1] = event.value
                else:
                    top[2] = True
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise fail(_where(frames), "YAML anchors and aliases are not allowed",
                           "write every value out in full")
            tag = getattr(event, "tag", None)
            if tag is not None:
                raise fail(_where(frames), f"YAML tags are not allowed (found {tag})",
                           "remove the tag; write plain mappings, lists and values")
            if is_key:
                if not isinstance(event, yaml.ScalarEvent):
                    raise fail(_where(frames), "a mapping key must be plain text", "write key: value")
                if event.value in frames[-1][0]:
                    raise fail(_where(frames), "given twice", "keep one of them")
                frames[-1][0].add(event.value)
                continue
            if isinstance(event, yaml.CollectionStartEvent) and len(frames) >= MAX_DEPTH:
                raise fail(_where(frames), f"nests mappings and lists over {MAX_DEPTH} deep",
                           "write flatter YAML: gitswarm's files nest a few levels at most")
            if isinstance(event, yaml.MappingStartEvent):
                frames.append([set(), None, True])
            elif isinstance(event, yaml.SequenceStartEvent):
                frames.append([None, -1, False])
            elif isinstance(event, yaml.CollectionEndEvent):
                frames.pop()
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise fail(None, f"not valid YAML: {' '.join(str(e).split())}",
                   "check the indentation and quoting at the line given") from None


def _where(frames: list[list[Any]]) -> str | None:
    """The field an event belongs to, like `worker.max_steps` or `tasks[2].title`."""
    out = ""
    for seen, key, _ in frames:
        if seen is None:
            out += f"[{key}]" if key >= 0 else ""
        elif key is not None:
            out += f".{key}" if out else str(key)
    return out or None


def typename(value: Any) -> str:
    """A YAML value's kind, as an error names it (null, str, list, dict...)."""
    return "null" if value is None else type(value).__name__


def shown(value: Any) -> str:
    """A value as an error quotes it: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def unknown_hint(key: Any, known: Iterable[str], what: str = "the fields are") -> str:
    """The hint for an unknown key: the known key it is closest to, if any ("did you mean 'model'?"),
    then all of them."""
    known = tuple(known)
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    mean = f"did you mean '{close[0]}'? " if close else ""
    return f"{mean}{what}: {', '.join(known)}"


class Collect:
    """How a validator meets a FileInvalid: raised at once (`errors` None: the first ends the check),
    or kept in `errors` and the check goes on (`gitswarm check`, the hub's guard on main: every
    problem of a file in one answer). One validator, two modes."""

    def __init__(self, errors: list[FileInvalid] | None = None):
        self.errors = errors

    def add(self, error: FileInvalid) -> None:
        if self.errors is None:
            raise error
        self.errors.append(error)

    def __call__(self, check: Callable[[], T], default: T) -> T:
        """check()'s value; when it fails while collecting, `default` (and the error is kept)."""
        if self.errors is None:
            return check()
        try:
            return check()
        except FileInvalid as e:
            self.errors.append(e)
            return default
