"""The roles' prompt templates (planner.md, worker.md, judge.md), shipped in the package as
gitswarm.prompt_templates and rendered by gitswarm.prompts."""
