"""Memory: what the team asked Lucy to remember, scoped to a person, a channel or the workspace,
with where each memory came from; recalled when a task starts, forgotten for real, and kept
safe from content that only pretends to be a person's wish (see docs/memory.md)."""
