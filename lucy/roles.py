"""Workspace roles, read from Slack's user objects (``users.info``), in one place.

``owner``, ``admin``, ``member`` or ``guest``. A guest is a multi- or single-channel guest
(``is_restricted`` / ``is_ultra_restricted``) or a person from another organisation in a Slack
Connect channel: Lucy answers them, but gives them no tools and never counts their click on
an approval.
"""

from __future__ import annotations

from typing import Any

ADMIN_ROLES = ("admin", "owner")
ROLES = ("owner", "admin", "member", "guest")


def is_admin(role: str | None) -> bool:
    """Whether ``role`` may act for the workspace (decide any approval, cancel any task)."""
    return role in ADMIN_ROLES


def is_external(user: dict[str, Any], team_id: str) -> bool:
    """A Slack Connect user from another organisation: their home team is not ``team_id``.
    (Enterprise Grid members carry ``enterprise_user`` and may belong to a sibling workspace:
    they are not external.)"""
    home = user.get("team_id")
    return bool(home and team_id and home != team_id and not user.get("enterprise_user"))


def role_of(user: dict[str, Any], team_id: str = "") -> str:
    """The role of a ``users.info`` user object in workspace ``team_id``."""
    if user.get("is_restricted") or user.get("is_ultra_restricted") or is_external(user, team_id):
        return "guest"
    if user.get("is_owner") or user.get("is_primary_owner"):
        return "owner"
    if user.get("is_admin"):
        return "admin"
    return "member"
