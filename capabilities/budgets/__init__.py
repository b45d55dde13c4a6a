"""Budgets: spend limits per workspace and user."""
