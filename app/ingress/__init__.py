"""Ingress: FastAPI + Slack Bolt. Turns outside input into workflow starts, signals and updates."""
