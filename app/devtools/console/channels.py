"""The fake workspace's public channels: ``conversations.list`` (how Lucy finds the channel it
announces email in)."""

from __future__ import annotations

from typing import Any

DEFAULT_CHANNELS = {"C0GENERAL": "general"}


class ChannelsMixin:
    """``conversations.list`` over ``self.channels`` (id -> name)."""

    channels: dict[str, str]

    def _m_conversations_list(self, p: dict[str, Any]) -> dict[str, Any]:
        """Public channels, a page at a time (``limit``; ``cursor`` is the offset)."""
        start, limit = int(p.get("cursor") or 0), max(1, min(1000, int(p.get("limit") or 100)))
        items = sorted(self.channels.items())[start : start + limit]
        more = start + limit < len(self.channels)
        page = [{"id": cid, "name": name, "is_channel": True, "is_member": True} for cid, name in items]
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": str(start + limit) * more}}
