"""The webhook endpoint and the `/lucy trigger` commands."""
