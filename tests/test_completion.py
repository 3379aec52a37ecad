"""Shell completion as the README tells it: the installed `gitswarm` prints click's bash, zsh and
fish scripts, and completes a subcommand's prefix from the variables those scripts set; the bash
script, sourced in a real bash, fills COMPREPLY."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GITSWARM = shutil.which("gitswarm") or str(Path(sys.executable).parent / "gitswarm")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*args] if args else [GITSWARM], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=os.environ["HOME"])
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("shell,marker", [
    ("bash", "complete -o nosort -F _gitswarm_completion gitswarm"),
    ("zsh", "#compdef gitswarm"),
    ("fish", "complete --no-files --command gitswarm"),
])
def test_the_installed_command_prints_each_shells_script(shell, marker):
    assert Path(GITSWARM).exists()
    script = run({"_GITSWARM_COMPLETE": f"{shell}_source"}).stdout
    assert marker in script, script
    assert f"_GITSWARM_COMPLETE={shell}_complete" in script


def test_a_subcommand_prefix_and_an_option_prefix_complete():
    def complete(*words: str) -> list[str]:
        out = run({"_GITSWARM_COMPLETE": "bash_complete", "COMP_WORDS": " ".join(words),
                   "COMP_CWORD": str(len(words) - 1)}).stdout
        return out.splitlines()

    assert complete("gitswarm", "cl") == ["plain,claim"]
    assert sorted(complete("gitswarm", "re")) == ["plain,reclaim", "plain,release", "plain,reopen", "plain,report"]
    assert complete("gitswarm", "task", "sh") == ["plain,show"]
    assert "plain,--workers" in complete("gitswarm", "serve", "--wo")


def test_the_bash_script_completes_in_bash():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    script = ('eval "$(_GITSWARM_COMPLETE=bash_source gitswarm)"\n'
              "COMP_WORDS=(gitswarm pu); COMP_CWORD=1; _gitswarm_completion gitswarm\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    path = f"{Path(GITSWARM).parent}:{os.environ.get('PATH', '')}"
    out = run({"PATH": path}, bash, "--norc", "-c", script).stdout
    assert out.split() == ["pushers"], out
