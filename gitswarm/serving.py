"""What a hub's `gitswarm serve` runs with, for `gitswarm status` on the same machine:
`<hub>/gitswarm/serve.json` holds its pid, host, sandbox mode and start time while it runs.
Light on imports: `status` reads it without loading the daemon."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from . import sandbox


def path(hub: Path) -> Path:
    """<hub>/gitswarm/serve.json."""
    return hub / "gitswarm" / "serve.json"


def write(hub: Path) -> None:
    """Say what this `serve` runs with, for `gitswarm status`: <hub>/gitswarm/serve.json."""
    info = {"pid": os.getpid(), "host": socket.gethostname(), "sandbox": sandbox.mode(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = path(hub).with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info) + "\n")
    os.replace(tmp, path(hub))


def clear(hub: Path) -> None:
    """Remove the file, when it is this process's (a newer serve may have written its own)."""
    try:
        if json.loads(path(hub).read_text()).get("pid") == os.getpid():
            path(hub).unlink()
    except (OSError, ValueError, AttributeError):
        pass


def alive(hub: Path) -> dict | None:
    """What the `serve` of a hub on this machine runs with (pid, host, sandbox, started), None when
    none is alive."""
    try:
        info = json.loads(path(hub).read_text())
        pid, host = int(info["pid"]), str(info["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    return info
