"""Alembic migrations (async env.py)."""
