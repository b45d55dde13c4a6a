"""Signed claims: the ingress signs who clicked, the worker verifies it (and nothing else does)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lucy.crypto import CryptoError, KeyRing
from lucy.settings import load_settings
from lucy.signing import DEVELOPMENT_KEY, Claim, ClaimSigner

NOW = datetime(2031, 5, 14, 12, 0, tzinfo=UTC)  # a fixed instant: the checks are about age, not dates
CLAIM = Claim("decision", "lucy-task-T1-C1-1.1", "ap-1", "approved", "UADMIN", "T1", NOW.isoformat())


def test_a_signed_claim_verifies_and_any_change_breaks_it():
    signer = ClaimSigner.from_encryption_keys(KeyRing.new_key("k1"))
    signature = signer.sign(CLAIM)
    assert signer.verify(CLAIM, signature, now=NOW) is None
    for field, value in [
        ("kind", "cancel"),
        ("workflow_id", "lucy-task-T1-C1-2.2"),
        ("subject", "ap-2"),
        ("verdict", "rejected"),
        ("slack_user_id", "UMALLORY"),
        ("slack_team_id", "T2"),
        ("issued_at", (NOW + timedelta(seconds=1)).isoformat()),
    ]:
        assert signer.verify(replace(CLAIM, **{field: value}), signature, now=NOW) is not None, field
    assert signer.verify(CLAIM, "", now=NOW) is not None
    assert signer.verify(CLAIM, signature.upper(), now=NOW) is not None


def test_age_and_clock_skew():
    signer = ClaimSigner([b"k" * 32])
    signature = signer.sign(CLAIM)
    assert signer.verify(CLAIM, signature, now=NOW + timedelta(minutes=4)) is None
    assert "too old" in (signer.verify(CLAIM, signature, now=NOW + timedelta(minutes=6)) or "")
    assert signer.verify(CLAIM, signature, now=NOW - timedelta(seconds=10)) is None  # small skew
    assert "too old" in (signer.verify(CLAIM, signature, now=NOW - timedelta(minutes=2)) or "")


def test_keys_come_from_the_encryption_key_ring_and_survive_a_rotation():
    old, new = KeyRing.new_key("old"), KeyRing.new_key("new")
    before = ClaimSigner.from_encryption_keys(old)
    during = ClaimSigner.from_encryption_keys(f"{new},{old}")  # the new key first, the old one kept
    signature = before.sign(CLAIM)
    assert during.verify(CLAIM, signature, now=NOW) is None
    assert during.sign(CLAIM) != signature  # new claims are signed with the new primary
    stranger = ClaimSigner.from_encryption_keys(KeyRing.new_key("other"))
    assert stranger.verify(CLAIM, signature, now=NOW) is not None
    # The signing key is derived: it is neither the AES key nor the development key.
    assert ClaimSigner.from_encryption_keys(None, development=True).sign(CLAIM) == ClaimSigner(
        [DEVELOPMENT_KEY]
    ).sign(CLAIM)
    assert before.sign(CLAIM) != ClaimSigner([DEVELOPMENT_KEY]).sign(CLAIM)


def test_a_field_with_a_newline_cannot_be_signed_ambiguously():
    signer = ClaimSigner([b"k" * 32])
    sneaky = replace(CLAIM, subject="ap-1\napproved")
    assert signer.verify(sneaky, "0" * 64, now=NOW) == "malformed claim"


def test_outside_development_no_key_means_no_signer_never_the_public_development_key():
    for raw in (None, "", "  "):
        with pytest.raises(CryptoError, match="LUCY_ENCRYPTION_KEYS"):
            ClaimSigner.from_encryption_keys(raw, development=False)


def test_the_signer_of_the_worker_and_the_ingress_refuses_with_the_development_key_in_staging():
    from lucy.signing import claim_signer

    staging = load_settings(env="staging", encryption_keys=None)
    with pytest.raises(CryptoError, match="LUCY_ENCRYPTION_KEYS"):
        claim_signer(staging)
    assert claim_signer(load_settings(env="development", encryption_keys=None)).sign(CLAIM) == ClaimSigner(
        [DEVELOPMENT_KEY]
    ).sign(CLAIM)
