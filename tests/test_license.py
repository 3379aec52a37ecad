"""The licence, said once in LICENSE (MIT) and where tools look for it: the package metadata
(PEP 639: License-Expression), the installed hook shims and the package's __init__."""

from __future__ import annotations

import tomllib
from importlib.metadata import metadata
from pathlib import Path

from gitswarm.install import HOOKS, hook_script

ROOT = Path(__file__).resolve().parent.parent
SPDX = "# SPDX-License-Identifier: MIT"


def test_license_file_and_project_metadata():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Copyright (c) 2026 the gitswarm authors" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT" and project["project"]["license-files"] == ["LICENSE"]
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])
    installed = metadata("gitswarm")  # this environment's install of the package
    assert installed["License-Expression"] == "MIT", "reinstall: pip install -e '.[test]'"
    assert "LICENSE" in (installed.get_all("License-File") or [])


def test_spdx_lines_in_the_shims_a_hub_gets_and_the_package():
    for name in HOOKS:
        assert hook_script(name).splitlines()[1] == SPDX
    assert (ROOT / "gitswarm" / "__init__.py").read_text().splitlines()[0] == SPDX
