"""The task file's JSON Schema, commented examples and the board README (shipped as gitswarm.schema)."""
