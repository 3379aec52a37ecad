# SPDX-License-Identifier: MIT
"""gitswarm: many coding agents on one codebase, coordinated through a bare git repository."""

__version__ = "0.1.0"
