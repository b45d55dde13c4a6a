"""Inbound mail and the `/lucy email` commands."""
