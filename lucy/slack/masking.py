"""Which view of a step an approval may show in its channel: the arguments verbatim, or masked
with the exact text kept for the people who may decide.

An approver sees every character that will run before Approve works. Arguments without a
secret are shown verbatim in the channel, with Approve and Reject. Arguments that hold a secret
are shown masked in the channel ("N secrets masked"), and Approve moves behind *Show exactly
what runs*: a modal that only a person who may decide can open (the worker verifies who
clicked), showing the exact text and the Approve button. When the masked view would differ
from the exact one in anything but secret tokens (:func:`lucy.redact.only_secrets_masked`),
the channel shows no arguments at all, only that they are shown privately.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lucy.contracts.ids import REJECT_ACTION_ID, SHOW_EXACT_ACTION_ID, approval_button_value
from lucy.redact import only_secrets_masked, redact

SHOW_EXACT_LABEL = "Show exactly what runs"


def raw_text(value: Any) -> str:
    """One argument as it will run: strings as they are, anything else as canonical JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True)
class Masking:
    """What masking did to a step's arguments."""

    secrets: int  # secrets masked, over every argument
    faithful: bool  # the masked view differs from the exact one only in secret tokens

    @property
    def needs_exact_view(self) -> bool:
        """Whether Approve must sit behind the exact view (a secret is masked)."""
        return self.secrets > 0


def recorded_masking(details: dict[str, Any]) -> Masking:
    """The masking an approval's record (its ``details``) says was applied."""
    return Masking(
        secrets=int(details.get("secrets_masked") or 0), faithful=bool(details.get("masked_faithful", True))
    )


def masking(arguments: dict[str, Any]) -> Masking:
    """Mask every argument and check that only secret tokens changed."""
    secrets, faithful = 0, True
    for value in arguments.values():
        raw = raw_text(value)
        done = redact(raw)
        secrets += done.secrets
        faithful = faithful and only_secrets_masked(raw, done.text)
    return Masking(secrets=secrets, faithful=faithful)


def secrets_note(count: int) -> str:
    """The channel's line under masked arguments."""
    noun = "secret" if count == 1 else "secrets"
    return (
        f":lock: {count} {noun} masked. The people who may decide see exactly what runs, every "
        f"character, with *{SHOW_EXACT_LABEL}*; Approve is there."
    )


def exact_view_buttons(workflow_id: str, approval_id: str) -> dict[str, Any]:
    """The actions of an approval whose arguments hold a secret: open the exact view (which
    holds Approve), or Reject."""
    value = approval_button_value(workflow_id, approval_id)
    return {
        "type": "actions",
        "block_id": f"lucy_approval_{approval_id}"[:255],
        "elements": [
            {
                "type": "button",
                "action_id": SHOW_EXACT_ACTION_ID,
                "text": {"type": "plain_text", "text": SHOW_EXACT_LABEL},
                "style": "primary",
                "value": value,
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION_ID,
                "text": {"type": "plain_text", "text": "Reject"},
                "style": "danger",
                "value": value,
            },
        ],
    }
