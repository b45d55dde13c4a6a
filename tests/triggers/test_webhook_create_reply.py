"""The answer to ``/lucy webhook create`` describes the signature to use: v2 (the delivery id
signed), not the deprecated v1. Through a signed slash command to the real ingress."""

from __future__ import annotations

from tests.conftest import Lucy, new_team

# The webhook tests' fixtures (Composio, and settings with encryption keys):
from tests.triggers.test_webhook_triggers import composio as composio
from tests.triggers.test_webhook_triggers import settings as settings


async def test_a_new_webhook_is_described_with_the_v2_signature(lucy: Lucy):
    """The answer to ``/lucy webhook create`` tells the sender to sign with v2 (the delivery id
    signed), not the deprecated v1."""
    answer = await lucy.command(
        "webhook create deploys Summarise the deploy", team=new_team(), user="UADMIN1"
    )
    said = answer.json()["text"]
    assert "`X-Lucy-Signature: v2=<hex HMAC-SHA256 of " in said and "v1=" not in said
    assert "<timestamp>\\n<delivery id>\\n<body>" in said
