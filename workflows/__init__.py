"""Temporal workflows. Deterministic code only: see DESIGN.md's dependency rules."""
