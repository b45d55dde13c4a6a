"""The fake workspace's people: ``users.info`` by id and ``users.lookupByEmail`` by the email
address in a member's profile, answering Slack's errors (``user_not_found``,
``users_not_found``, ``invalid_arguments``) as Slack does."""

from __future__ import annotations

from typing import Any


def default_profile(uid: str) -> dict[str, Any]:
    """A user Slack would describe from the id alone (the test suite's convention: ``UADMIN…``
    are admins, ``UOWNER…`` owners, ``UGUEST…`` guests, ``UGONE…`` deactivated, ``UEXT…``
    from another organisation)."""
    return {
        "id": uid,
        "name": uid.lower(),
        "deleted": uid.startswith("UGONE"),
        "is_admin": uid.startswith("UADMIN"),
        "is_owner": uid.startswith("UOWNER"),
        "is_restricted": uid.startswith("UGUEST"),
        **({"team_id": "TOTHERORG"} if uid.startswith("UEXT") else {}),
        "is_bot": False,
        "tz": "Europe/Paris",
        "profile": {"display_name": f"name-{uid.lower()}", "real_name": f"Real {uid}"},
    }


class PeopleMixin:
    """Looks people up in ``self.users`` (id -> Slack user object); ``default_profile`` answers
    for an id nobody described."""

    users: dict[str, dict[str, Any]]

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        uid = p.get("user")
        if not uid:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": self.users.get(uid) or default_profile(uid)}

    def _m_users_lookupByEmail(self, p: dict[str, Any]) -> dict[str, Any]:
        """Only people whose profile has that address (case-insensitive); deactivated people are
        found too (their ``deleted`` says so), as on Slack."""
        email = str(p.get("email") or "").strip().lower()
        if not email:
            return {"ok": False, "error": "invalid_arguments"}
        for user in self.users.values():
            if str((user.get("profile") or {}).get("email") or "").lower() == email:
                return {"ok": True, "user": user}
        return {"ok": False, "error": "users_not_found"}
