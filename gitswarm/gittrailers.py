"""A commit's trailers as `git log --format=%(trailers:key=<key>,valueonly)` reads them, without the
`git log` process, where git's reading provably cannot differ from a plain one; None where it
might (the caller then asks git). Part of the git layer: the guard checks which tasks a commit on
main names by git's own reading (gitswarm/githook.py), and a `git log` was ~2 ms of a landing push.

git's trailer parser (trailer.c) has many rules: the first paragraph is the title; the block is
the last paragraph, found from the end, where every line is a trailer (or a quarter is, when one
is git's own, Signed-off-by or "(cherry picked from commit"); lines that start with a space
continue the trailer above; comment lines, a scissors line and a `---` patch are cut off; config
changes the separators, maps tokens to keys (`trailer.<name>.key`) and the comment character. This
reads a message only when none of that can apply:

- no `encoding` header; no control character in the message but tab and newline;
- no line starts with `#` or `---`; it does not end in a blank line (blank: spaces and tabs only;
  those before its first line are skipped, as git skips them);
- a message of one paragraph is its title: no trailer. Else, in its last paragraph (the trailer
  block can only be there), no line starts with `<key>:` (spaces or tabs before the colon allowed,
  any case): no `key` trailer, whatever git makes of the paragraph; or every line of it is exactly
  `<token>: <value>` in printable ASCII, <token> letters, digits and `-` from a letter or digit,
  <value> with no space at either end: all lines are trailers, so the paragraph is the block, each
  line one trailer, its token and value as written;
- and no config file git would read for the hook names trailers, a comment character, an include
  or an encoding (a conservative text scan: the word anywhere, in any case), nor do the variables
  that add config (GIT_CONFIG_PARAMETERS, GIT_CONFIG_COUNT, GIT_CONFIG) say anything.

tests/test_gittrailers.py holds this to git's own answers on messages built to break it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_TEXT = re.compile(rb"[\t\n -~\x80-\xff]*")  # no control character but tab and newline
# compiled at import: the guard forks a child per push, whose cache of compiled expressions is empty
_TRAILER = re.compile(rb"([A-Za-z0-9][A-Za-z0-9-]*): ([!-~](?:[ -~]*[!-~])?)")
_CONFIG_WORDS = (b"trailer", b"commentchar", b"commentstring", b"include", b"encoding")  # includeIf too; i18n
SYSTEM_CONFIGS = ("/etc/gitconfig", "/usr/local/etc/gitconfig")  # where git builds look (more is only slower)
_TRUE = ("1", "true", "yes", "on")


def values(raw_commit: bytes, key: str) -> list[str] | None:
    """The values of the commit's `key` trailers (any case), each split at its spaces, as `git log
    --format='%(trailers:key=<key>,valueonly,separator=%x20)'` prints them and a split reads them;
    None when git might read the message otherwise than plainly (the module's rules). `key`:
    letters, digits and `-`."""
    head, blank, message = raw_commit.partition(b"\n\n")
    if not blank or any(line.startswith(b"encoding ") for line in head.split(b"\n")) \
            or not _TEXT.fullmatch(message):
        return None
    lines = message.split(b"\n")
    while lines and not lines[0].strip(b" \t"):  # git's title is the first line that is not blank
        lines.pop(0)
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines or not lines[-1].strip(b" \t"):  # an empty message, or blank lines at its end
        return None
    if any(line.startswith((b"#", b"---")) for line in lines):
        return None
    last = max((i for i, line in enumerate(lines) if not line.strip(b" \t")), default=None)
    if last is None:  # one paragraph: the title
        return []
    block = lines[last + 1:]
    wanted = key.lower().encode()
    if not any(line[:len(wanted)].lower() == wanted and line[len(wanted):].lstrip(b" \t")[:1] == b":"
               for line in block):
        return []  # whatever git makes of the paragraph, no line of it can be a `key` trailer
    found = [_TRAILER.fullmatch(line) for line in block]
    if not all(found):
        return None
    return [v.decode() for m in found if m and m[1].lower() == wanted for v in m[2].split()]


def config_plain(env: dict[str, str]) -> bool:
    """Whether no config git would read with `env` (a hook's: GIT_DIR, HOME, ...) can change how it
    reads trailers. Unreadable config is not plain."""
    if any(env.get(name) for name in ("GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_CONFIG")):
        return False
    git_dir = Path(env.get("GIT_DIR") or ".")
    files = [git_dir / "config", git_dir / "config.worktree"]
    if env.get("GIT_CONFIG_GLOBAL") is not None:
        files.append(Path(env["GIT_CONFIG_GLOBAL"]))
    else:
        home = env.get("HOME")
        config_home = env.get("XDG_CONFIG_HOME") or (home and os.path.join(home, ".config"))
        files += [Path(p) for p in (config_home and os.path.join(config_home, "git", "config"),
                                    home and os.path.join(home, ".gitconfig")) if p]
    if env.get("GIT_CONFIG_NOSYSTEM", "").lower() not in _TRUE:
        files += [Path(p) for p in (env.get("GIT_CONFIG_SYSTEM"), *SYSTEM_CONFIGS) if p]
    for path in files:
        try:
            text = path.read_bytes().lower()
        except FileNotFoundError:
            continue
        except OSError:
            return False
        if any(word in text for word in _CONFIG_WORDS):
            return False
    return True
