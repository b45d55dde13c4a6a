"""Triggers: signed webhooks that start tasks from a template."""
