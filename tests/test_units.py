"""The systemd units in contrib/systemd/: each command line they start runs with the installed
gitswarm, `systemd-analyze verify` (Debian's systemd package; no running systemd needed) finds no
problem in them, and their hardening leaves out what breaks bubblewrap. That serve and worker
exit 0 on SIGTERM, which the units count on, is tested in tests/test_swarm.py and
tests/test_transports.py."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "contrib" / "systemd"
INSTALLED = "/opt/gitswarm/bin/gitswarm"  # where the units expect it (docs/serving.md)
INSTANCES = {"gitswarm-serve@.service": "srv-hub.git", "gitswarm-worker@.service": "main",
             "gitswarm-judge@.service": "srv-hub.git", "gitswarm-judge@.timer": "srv-hub.git"}
# each breaks bwrap: namespaces forbidden or confined, or a /proc it may not mount afresh
BREAKS_BWRAP = ("RestrictNamespaces", "PrivateUsers", "ProtectKernelTunables", "ProcSubset",
                "SystemCallFilter", "MemoryDenyWriteExecute")


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)  # EnvironmentFile= twice
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


def test_every_unit_is_there_and_licensed():
    assert sorted(p.name for p in UNITS.iterdir()) == sorted(INSTANCES)
    for name in INSTANCES:
        assert (UNITS / name).read_text().startswith("# SPDX-License-Identifier: MIT\n"), name


@pytest.mark.parametrize("name", [n for n in INSTANCES if n.endswith(".service")])
def test_each_command_line_runs_with_the_installed_gitswarm(name, tmp_path):
    service = unit(name)["Service"]
    command = service["ExecStart"]
    assert command.startswith(INSTALLED + " "), command
    hub = tmp_path / "srv" / "hub.git"
    words = (command.replace(INSTALLED, "gitswarm", 1).replace("%f", str(hub))
             .replace("${GITSWARM_HUB}", str(hub)).replace("%i", INSTANCES[name])).split()
    words = [w for w in words if not re.fullmatch(r"\$\w+", w)]  # options from the environment file
    assert "%" not in " ".join(words), words
    subcommand = words[1]
    help_ = subprocess.run([sys.executable, "-m", "gitswarm", *words[1:], "--help"], capture_output=True,
                           text=True, cwd=tmp_path)
    assert help_.returncode == 0, help_.stderr
    assert f"Usage: gitswarm {subcommand} " in help_.stdout
    assert service["Restart" if subcommand != "judge" else "Type"] == ("on-failure" if subcommand != "judge"
                                                                        else "oneshot")


@pytest.mark.parametrize("name", [n for n in INSTANCES if n.endswith(".service")])
def test_the_hardening_leaves_bubblewrap_working(name):
    service = unit(name)["Service"]
    for key in BREAKS_BWRAP:
        assert key not in service, f"{name}: {key}= breaks bubblewrap"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert "AF_NETLINK" in service["RestrictAddressFamilies"]  # bwrap --unshare-net sets up loopback with it
    text = (UNITS / "gitswarm-serve@.service").read_text()
    assert all(key in text for key in BREAKS_BWRAP[:4]), "the serve unit says why each is left out"


def test_systemd_analyze_verify_finds_nothing(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    gitswarm = shutil.which("gitswarm") or str(Path(sys.executable).parent / "gitswarm")
    assert Path(gitswarm).exists(), "the installed gitswarm command"
    names = []
    for template, instance in INSTANCES.items():
        text = (UNITS / template).read_text().replace(INSTALLED, gitswarm)
        name = template.replace("@.", f"@{instance}.")
        (tmp_path / name).write_text(text)
        (tmp_path / template).write_text(text)
        names.append(name)
    bad = tmp_path / "bad.service"  # the check is not vacuous: a broken unit is reported
    bad.write_text("[Service]\nExecStart=/bin/true\nRestart=sometimes\n")
    checked = subprocess.run([analyze, "verify", "--man=no", str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert "Restart" in checked.stderr or "restart" in checked.stderr, checked
    checked = subprocess.run([analyze, "verify", "--man=no", *names], capture_output=True, text=True, cwd=tmp_path)
    assert checked.returncode == 0 and checked.stderr.strip() == "", checked.stderr
