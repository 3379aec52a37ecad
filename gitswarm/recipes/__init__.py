"""Recipes: small programs that run a known agent CLI as a gitswarm command agent under the
contract of docs/agents.md (gitswarm.agents.contract). `python -m gitswarm.recipes.<name>`."""
