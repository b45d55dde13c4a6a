"""Approvals: asking a person, verifying who decided, the exact view."""
