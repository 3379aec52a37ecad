# SPDX-License-Identifier: MIT
"""The hook shims that `gitswarm init` installs (shipped in the package as gitswarm.hooks)."""
