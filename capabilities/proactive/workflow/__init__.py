"""Deterministic workflow code for proactive work."""
