"""Workspace skills: ``SKILL.md`` files members add, versioned per workspace, that the model
loads on demand with the ``use_skill`` tool (see docs/skills.md)."""
