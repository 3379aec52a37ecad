"""The hub's own settings as its hooks read them.

Kept free of heavy imports: the hooks import it on every push.
"""

from __future__ import annotations

import os


def setting(git_dir: str, key: str) -> str | None:
    """A git config value of the hub (`git config --get`, as git itself reads it), None when unset."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    proc = subprocess.run(["git", "--git-dir", git_dir, "config", "--get", key], capture_output=True, env=env)
    value = proc.stdout.decode(errors="replace").strip()
    return value if proc.returncode == 0 and value else None
