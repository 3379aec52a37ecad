"""The one YAML loader: every YAML file gitswarm reads (task files and goal records on the board,
`.gitswarm.yaml`, goals' front matter, a host's endpoints file) loaded as plain data, with errors
that name the file and the field, of the class the caller chooses. Checking the data is
gitswarm.validate's."""

from __future__ import annotations

from typing import Any

import yaml

from .errors import FileInvalid
from .validate import Fail

try:  # libyaml is an order of magnitude faster; PyPI wheels ship it
    _Loader: Any = yaml.CSafeLoader
    _Dumper: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover
    _Loader, _Dumper = yaml.SafeLoader, yaml.SafeDumper

_SCALAR, _ALIAS, _MAP, _SEQ = yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
_END_MAP, _END_SEQ = yaml.MappingEndEvent, yaml.SequenceEndEvent
MAX_DEPTH = 32  # mappings and lists nested deeper are refused before they are built (a parser's recursion)


def load_yaml(text: str | bytes, path: str, fail: Fail | None = None, max_bytes: int = 64 * 1024) -> Any:
    """Load YAML (text, or bytes that must be UTF-8) as plain data, refusing what safe_load would
    quietly accept: tags, anchors and aliases (YAML bombs among them), collections nested over
    MAX_DEPTH deep, and a key given twice in one mapping (the last would win unseen). Whatever the
    input, the only error is `fail(field, problem, hint)` (default: FileInvalid)."""
    fail = fail or (lambda field, problem, hint=None: FileInvalid(path, field, problem, hint))
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise fail(None, f"file is {size} bytes; the limit is {max_bytes}", "make it shorter")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise fail(None, f"not UTF-8 ({e.reason} at byte {e.start})", "save it as UTF-8") from None
    frames: list[list[Any]] = []  # per open collection: [keys seen or None for a list, key or index, at a key]
    top: list[Any] | None = None  # frames[-1]
    try:
        for event in yaml.parse(text, Loader=_Loader):  # a board parses thousands: type tests, not isinstance
            kind = type(event)
            if kind is _END_MAP or kind is _END_SEQ:
                frames.pop()
                top = frames[-1] if frames else None
                continue
            if kind is not _SCALAR and kind is not _MAP and kind is not _SEQ and kind is not _ALIAS:
                continue  # stream and document events
            is_key = False
            if top is not None:
                if top[0] is None:  # an item of a list
                    top[1] += 1
                elif top[2]:  # a key of a mapping
                    is_key, top[2] = True, False
                    if kind is _SCALAR:
                        top[1] = event.value
                else:
                    top[2] = True
            if kind is _ALIAS or event.anchor is not None:
                raise fail(_where(frames), "YAML anchors and aliases are not allowed",
                           "write every value out in full")
            if event.tag is not None:
                raise fail(_where(frames), f"YAML tags are not allowed (found {event.tag})",
                           "remove the tag; write plain mappings, lists and values")
            if is_key:
                if kind is not _SCALAR:
                    raise fail(_where(frames), "a mapping key must be plain text", "write key: value")
                if event.value in top[0]:  # type: ignore[index]
                    raise fail(_where(frames), "given twice", "keep one of them")
                top[0].add(event.value)  # type: ignore[index]
            elif kind is not _SCALAR:
                if len(frames) >= MAX_DEPTH:
                    raise fail(_where(frames), f"nests mappings and lists over {MAX_DEPTH} deep",
                               "write flatter YAML: gitswarm's files nest a few levels at most")
                top = [set(), None, True] if kind is _MAP else [None, -1, False]
                frames.append(top)
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise fail(None, f"not valid YAML: {' '.join(str(e).split())}",
                   "check the indentation and quoting at the line given") from None
    except (ValueError, OverflowError) as e:  # a date that does not exist, an integer of 5,000 digits
        raise fail(None, f"not valid YAML: a value cannot be read ({' '.join(str(e).split())[:200]})",
                   "quote the value to make it text") from None


def dump_yaml(doc: Any) -> bytes:
    """A board file's YAML (a task, a goal record, a run's record): keys in their order, block
    style, UTF-8."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=100).encode("utf-8")


def _where(frames: list[list[Any]]) -> str | None:
    """The field an event belongs to, like `worker.max_steps` or `tasks[2].title`."""
    out = ""
    for seen, key, _ in frames:
        if seen is None:
            out += f"[{key}]" if key >= 0 else ""
        elif key is not None:
            out += f".{key}" if out else str(key)
    return out or None
