"""POST /slack/events against hostile input: the gate's order (size cap -> signature -> parse ->
shape -> Bolt), what a refusal logs, and a property test with signed hostile payloads."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from sqlalchemy import text
from temporalio.service import RPCError

from lucy.contracts.ids import (
    APPROVE_ACTION_ID,
    CANCEL_ACTION_ID,
    REJECT_ACTION_ID,
    command_workflow_id,
    task_workflow_id,
)
from lucy.guard import MAX_BODY_BYTES
from lucy.logging import configure_logging
from tests.conftest import Lucy, mention_event, new_team, sign

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MARKER = "SECRET-BODY-MARKER-7f3a"  # must never reach a log line of a refused request


async def _post(
    lucy: Lucy, body: bytes | str, ctype: str = JSON, *, signed: bool = True, headers: Any = None
) -> httpx.Response:
    raw = body.encode() if isinstance(body, str) else body
    h: list[tuple[str, str | bytes]] = [("Content-Type", ctype)]
    if signed:
        h += list(sign(raw).items())
    h += list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
    return await lucy.http.post("/slack/events", content=raw, headers=h)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- size cap, before anything else -----------------------------------------------------------


async def test_chunked_body_over_the_cap_is_refused_without_reading_it(lucy: Lucy):
    chunk = 64 * 1024
    sent = 0

    async def body():  # no Content-Length: httpx streams it chunked
        nonlocal sent
        for _ in range(8 * 1024 * 1024 // chunk):  # 8 MB
            sent += chunk
            yield b" " * chunk

    r = await lucy.http.post("/slack/events", content=body(), headers={"Content-Type": JSON})
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"
    assert sent <= MAX_BODY_BYTES + 2 * chunk, f"the app read {sent} bytes of an oversized body"


async def test_declared_oversize_and_absurd_lengths_are_refused_at_once(lucy: Lucy):
    for length in (str(MAX_BODY_BYTES + 1), "9" * 40):
        r = await lucy.http.post(
            "/slack/events", content=b"{}", headers={"Content-Type": JSON, "Content-Length": length}
        )
        assert r.status_code == 413, length


# --- the signature, before anything is parsed -------------------------------------------------


async def test_unsigned_bodies_are_refused_before_they_are_parsed(lucy: Lucy):
    mention = json.dumps(mention_event(team=new_team())).encode()
    for body, ctype in (
        (mention, JSON),
        (b"{not json", JSON),
        (_deep(100_000).encode(), JSON),  # would be a RecursionError if it were parsed
        (b"payload=" + _deep(100_000).encode(), FORM),
        (b"x", "text/plain"),
        (b"\xff\xfe", JSON),
    ):
        r = await _post(lucy, body, ctype, signed=False)
        assert r.status_code == 401, (body[:20], r.text)
        assert r.json()["error"] == "invalid_signature"


async def test_junk_signature_headers_are_refused_not_crashed(lucy: Lucy):
    body = json.dumps(mention_event(team=new_team())).encode()
    good = sign(body)
    ts, sig = good["X-Slack-Request-Timestamp"], good["X-Slack-Signature"]
    cases: list[list[tuple[str, str]]] = [
        [("X-Slack-Request-Timestamp", "abc"), ("X-Slack-Signature", sig)],
        [("X-Slack-Request-Timestamp", "²³"), ("X-Slack-Signature", sig)],  # isdigit(), not int()
        [("X-Slack-Request-Timestamp", "9" * 5000), ("X-Slack-Signature", sig)],
        [("X-Slack-Request-Timestamp", "-1"), ("X-Slack-Signature", sig)],
        [("X-Slack-Request-Timestamp", ts), ("X-Slack-Signature", "v0=é" + sig[4:])],  # non-ASCII
        [("X-Slack-Request-Timestamp", ts), ("X-Slack-Signature", sig), ("X-Slack-Signature", sig)],
        [("X-Slack-Request-Timestamp", ts), ("X-Slack-Request-Timestamp", ts), ("X-Slack-Signature", sig)],
        [("X-Slack-Request-Timestamp", ts)],
    ]
    for headers in cases:
        latin1 = [(k, v.encode("latin-1")) for k, v in headers]  # as raw header bytes
        r = await _post(lucy, body, JSON, signed=False, headers=latin1)
        assert r.status_code == 401, (headers, r.text)


async def test_a_stale_or_forged_signature_binds_nothing_from_the_body(lucy: Lucy):
    team = new_team()
    body = json.dumps(mention_event(team=team)).encode()
    structlog.contextvars.clear_contextvars()
    for headers in (sign(body, secret="not-the-secret"), sign(body, timestamp=int(time.time()) - 301)):
        r = await _post(lucy, body, JSON, signed=False, headers=headers)
        assert r.status_code == 401
        assert team not in json.dumps(structlog.contextvars.get_contextvars())


# --- signed but hostile: 400 with a clear message, never a 500 --------------------------------


def _payload(doc: Any) -> str:
    return urlencode({"payload": json.dumps(doc)})


def _mention(**changes: Any) -> str:
    event = mention_event(team=new_team())
    for key, value in changes.items():
        if key.startswith("event."):
            event["event"][key.removeprefix("event.")] = value
        else:
            event[key] = value
    return json.dumps(event)


SIGNED_HOSTILE: list[tuple[str, bytes | str, str, str]] = [
    ("deep JSON", _deep(100_000), JSON, "nested"),
    ("deep but parseable JSON", '{"a":' * 500 + "1" + "}" * 500, JSON, "nested"),
    ("deep JSON in payload=", "payload=" + _deep(100_000), FORM, "nested"),
    ("deep JSON inside an event", _mention(**{"event.text": json.loads(_deep(200))}), JSON, "nested"),
    ("not UTF-8", b'{"type": "\xff\xfe"}', JSON, "UTF-8"),
    ("form not UTF-8", b"command=%2Flucy&text=%ff%fe", FORM, "form"),
    ("payload is an array", _payload([1, 2]), FORM, "payload field is not a JSON object"),
    ("payload is a string", _payload("block_actions"), FORM, "payload field is not a JSON object"),
    ("payload is empty", "payload=", FORM, "payload field is not valid JSON"),
    ("duplicate form keys", "command=%2Flucy&text=a&text=b", FORM, "more than once"),
    ("too many form fields", "&".join(f"f{i}=1" for i in range(500)), FORM, "fields"),
    ("form that is JSON", '{"type": "url_verification", "challenge": "x"}', FORM, "JSON"),
    ("huge number", '{"type": "event_callback", "n": ' + "9" * 5000 + "}", JSON, "not valid JSON"),
    ("NUL in text", _mention(**{"event.text": "a\x00b"}), JSON, "NUL"),
    ("lone surrogate", _mention(**{"event.text": "\ud800"}), JSON, "surrogate"),
    ("array body", "[1, 2]", JSON, "not a JSON object"),
    ("event is a string", _mention(event="app_mention"), JSON, "event object"),
    ("event type is a list", _mention(**{"event.type": ["app_mention"]}), JSON, "event object"),
    ("event user is an object", _mention(**{"event.user": {"id": "U1"}}), JSON, "event.user"),
    ("channel id far too long", _mention(**{"event.channel": "C" * 500}), JSON, "event.channel"),
    ("ts is a number", _mention(**{"event.ts": 1712345678.1}), JSON, "ts"),
    ("team is a number", _mention(team=7), JSON, "body.team"),
    ("authorizations is a string", _mention(authorizations="abc"), JSON, "authorizations"),
    ("enterprise is a list", _mention(enterprise=["id"]), JSON, "enterprise"),
    ("view is a string", json.dumps({"type": "view_submission", "view": "v"}), JSON, "view"),
    ("block_actions without actions", _payload({"type": "block_actions", "actions": []}), FORM, "actions"),
    (
        "block_actions with junk actions",
        _payload({"type": "block_actions", "actions": ["x"]}),
        FORM,
        "actions",
    ),
    ("action without action_id", _payload({"type": "block_actions", "actions": [{}]}), FORM, "action_id"),
    (
        "block_actions user is a string",
        _payload({"type": "block_actions", "user": "U1", "actions": [{"action_id": APPROVE_ACTION_ID}]}),
        FORM,
        "user",
    ),
    (
        "command with a huge trigger id",
        urlencode({"command": "/lucy", "trigger_id": "t" * 300}),
        FORM,
        "trigger_id",
    ),
    ("unsupported content type", "x", "text/plain", "content type"),
    (  # found by the property test below: Bolt's Assistant raised, a 500
        "assistant thread without its thread",
        json.dumps({"type": "event_callback", "event": {"type": "assistant_thread_started", "channel": "0"}}),
        JSON,
        "assistant_thread",
    ),
    (
        "assistant thread with a numeric ts",
        json.dumps(
            {
                "type": "event_callback",
                "event": {
                    "type": "assistant_thread_context_changed",
                    "assistant_thread": {"channel_id": "D1", "thread_ts": 1.5},
                },
            }
        ),
        JSON,
        "assistant_thread",
    ),
]


@pytest.mark.parametrize(
    ("body", "ctype", "says"), [c[1:] for c in SIGNED_HOSTILE], ids=[c[0] for c in SIGNED_HOSTILE]
)
async def test_signed_hostile_bodies_get_a_clear_400(lucy: Lucy, body: bytes | str, ctype: str, says: str):
    r = await _post(lucy, body, ctype)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_request"
    assert says in r.json()["message"]


async def test_slash_command_that_mentions_payload_reaches_lucy(lucy: Lucy):
    """Bolt reads a form body containing the word "payload" as interactivity and finds nothing;
    ingress hands Bolt the document it parsed itself."""
    team = new_team()
    trigger = f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:8]}"
    r = await lucy.post_form(
        {
            "command": "/lucy",
            "text": "explain this webhook payload",
            "team_id": team,
            "user_id": "U0ALICE",
            "channel_id": "C0GENERAL",
            "trigger_id": trigger,
        }
    )
    assert r.status_code == 200, r.text
    await lucy.client.get_workflow_handle(command_workflow_id(team, "C0GENERAL", trigger)).describe()


# --- refusals log metadata only ---------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger back as it was (the test points it at its captured stderr)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_refused_requests_log_metadata_never_the_body(
    lucy: Lucy, capsys: pytest.CaptureFixture[str], restore_logging: None
):
    configure_logging("INFO", json_output=True)  # here: capsys swaps stderr between phases
    capsys.readouterr()
    event = mention_event(team=MARKER, text=MARKER)
    signed_body = json.dumps(event).encode()
    r = await _post(lucy, signed_body, JSON, signed=False, headers=sign(signed_body, secret="wrong"))
    assert r.status_code == 401  # forged: Bolt would log the whole body at INFO
    assert (await _post(lucy, signed_body, JSON, signed=False)).status_code == 401
    assert (await _post(lucy, json.dumps({"type": MARKER, "x": [MARKER]}) + "}", JSON)).status_code == 400
    too_deep = _mention(team_id=MARKER, **{"event.text": json.loads(_deep(100))})
    assert (await _post(lucy, too_deep, JSON)).status_code == 400
    assert (await _post(lucy, MARKER, "text/plain")).status_code == 400
    big = json.dumps({"team_id": MARKER, "pad": " " * MAX_BODY_BYTES})
    assert (await _post(lucy, big, JSON)).status_code == 413
    logged = capsys.readouterr().err
    assert MARKER not in logged
    lines = [json.loads(x) for x in logged.splitlines() if x.startswith("{")]
    refused = [x for x in lines if x.get("event") == "Slack request refused"]
    assert [x["status"] for x in refused] == [401, 401, 400, 400, 400, 413]
    for line in refused:
        assert {"reason", "content_length", "content_type", "has_signature", "remote_addr"} <= set(line)
        assert "slack_team_id" not in line and "slack_event_id" not in line
    handled = [x for x in lines if x.get("event") == "slack request handled"]
    assert {x["kind"] for x in handled} == {"unknown"}


# --- property test: signed hostile payloads through the real app ------------------------------

_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_any = st.recursive(
    _leaf,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)
_slack_id = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12)
_ids = st.integers(0, 3).flatmap(lambda i: st.text(max_size=40) if i == 0 else _slack_id)
_slack_ts = st.from_regex(r"\A1[0-9]{9}\.[0-9]{6}\Z")
_ts = st.integers(0, 3).flatmap(lambda i: st.text(max_size=40) if i == 0 else _slack_ts)
_words = st.text(max_size=300) | st.sampled_from(["payload", "help", "tasks", "status x", "cancel", ""])
_teams = st.uuids().map(lambda u: "T" + u.hex[:10].upper())


def _odd(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right type, sometimes anything at all."""
    return st.integers(0, 7).flatmap(lambda i: _any if i == 0 else good)  # one_of() drops duplicates


_event = st.fixed_dictionaries(
    {
        "type": _odd(
            st.sampled_from(["app_mention", "message", "app_home_opened", "assistant_thread_started", "x"])
        ),
    },
    optional={
        "user": _odd(_ids),
        "text": _odd(_words),
        "ts": _odd(_ts),
        "channel": _odd(_ids),
        "thread_ts": _odd(_ts),
        "channel_type": _odd(st.sampled_from(["im", "channel"])),
        "subtype": _odd(st.sampled_from(["bot_message", "file_share", "message_changed"])),
        "bot_id": _odd(_ids),
        "team": _odd(_ids),
        "tab": _odd(st.sampled_from(["home", "messages"])),
        "assistant_thread": _odd(st.fixed_dictionaries({"channel_id": _ids, "thread_ts": _ts})),
        "message": _odd(st.fixed_dictionaries({}, optional={"user": _odd(_ids), "ts": _odd(_ts)})),
    },
)
_event_callback = st.fixed_dictionaries(
    {"type": st.just("event_callback"), "event": _odd(_event)},
    optional={
        "team_id": _odd(_ids),
        "event_id": _odd(_ids),
        "authorizations": _odd(st.lists(st.fixed_dictionaries({"team_id": _odd(_ids)}), max_size=2)),
        "is_ext_shared_channel": _odd(st.booleans()),
        "enterprise": _odd(_ids),
    },
)
_action = st.fixed_dictionaries(
    {"action_id": _odd(st.sampled_from([APPROVE_ACTION_ID, REJECT_ACTION_ID, CANCEL_ACTION_ID, "x"]))},
    optional={
        "value": _odd(_words | st.builds(lambda w: json.dumps({"w": w, "a": "1"}), _ids)),
        "text": _odd(st.just({"type": "plain_text", "text": "Approve"})),
    },
)
_ref = _odd(st.fixed_dictionaries({}, optional={"id": _odd(_ids), "team_id": _odd(_ids)}))
_block_actions = st.fixed_dictionaries(
    {"type": _odd(st.just("block_actions")), "actions": _odd(st.lists(_action, min_size=1, max_size=2))},
    optional={
        "team": _ref,
        "user": _ref,
        "channel": _ref,
        "container": _odd(st.fixed_dictionaries({"type": st.sampled_from(["message", "view"])})),
        "message": _odd(st.fixed_dictionaries({"ts": _odd(_ts)})),
        "trigger_id": _odd(_ids),
    },
)
_command = st.fixed_dictionaries(
    {
        "command": st.sampled_from(["/lucy", "/lucy", "/other", ""]),
        "text": _words | st.integers(1_000, 150_000).map(lambda n: "é" * n),
        "team_id": _ids,
        "user_id": _ids,
        "channel_id": _ids,
    },
    optional={"trigger_id": _ids, "response_url": st.text(max_size=50)},
)
_url_verification = st.fixed_dictionaries({"type": st.just("url_verification"), "challenge": _odd(_words)})
_unknown_type = st.builds(
    lambda t, d: {**d, "type": t},
    _odd(st.text(max_size=20)),
    st.dictionaries(st.text(max_size=8), _any, max_size=4),
)
_not_an_object = st.one_of(st.lists(_any, max_size=3), _leaf)
_deep_json = st.integers(50, 3000).map(_deep)
_deep_payload = st.integers(50, 3000).map(lambda n: "payload=" + '{"a":' * n + "1" + "}" * n)
# Well formed: any text a person can type (Slack never sends NUL or lone surrogates; the guard
# refuses them, see the hostile cases above).
_typed_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=80)
_clean_mention = st.builds(
    lambda team, words: mention_event(team=team, text=words or "hi"), _teams, _typed_text
)
# (kind, strategy, weight): st.one_of flattens nested one_ofs, so weights are explicit here.
_CASES: list[tuple[str, st.SearchStrategy[Any], int]] = [
    ("json", _event_callback, 4),
    ("form", _block_actions.map(lambda d: {"payload": json.dumps(d)}), 2),
    ("form", _command, 3),
    ("json", _url_verification, 1),
    ("json", _unknown_type, 1),
    ("json", _not_an_object, 1),
    ("raw-json", _deep_json, 1),
    ("raw-form", _deep_payload, 1),
    ("raw-json", st.binary(max_size=60), 1),
    ("raw-form", st.binary(max_size=60), 1),
    ("mention", _clean_mention, 2),
]
HOSTILE = st.sampled_from([(k, s) for k, s, w in _CASES for _ in range(w)]).flatmap(
    lambda case: case[1].map(lambda doc: (case[0], doc))
)


def _encode(kind: str, doc: Any) -> tuple[bytes, str]:
    if kind in ("json", "mention"):
        return json.dumps(doc).encode(), JSON
    if kind == "form":
        return urlencode(doc).encode(), FORM
    raw = doc if isinstance(doc, bytes) else doc.encode()
    return raw, JSON if kind == "raw-json" else FORM


@pytest.fixture
async def since(lucy: Lucy) -> Any:
    """The database's clock when the test starts: task rows from then on are this test's."""
    async with lucy.engine.connect() as conn:
        return (await conn.execute(text("SELECT now()"))).scalar_one()


_CHECKED: set[str] = set()  # task rows already seen to have their workflow


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=HOSTILE)
async def test_signed_hostile_payloads_never_500_and_leave_nothing_half_done(
    lucy: Lucy, since: Any, case: tuple[str, Any]
):
    kind, doc = case
    body, ctype = _encode(kind, doc)
    r = await _post(lucy, body, ctype)
    hypothesis_event(f"{kind}: {r.status_code}")  # see --hypothesis-show-statistics
    assert r.status_code in (200, 400, 404), (r.status_code, r.text[:200], body[:300])
    if kind == "mention":  # well formed: accepted only once its workflow exists
        assert r.status_code == 200, r.text
        ev = doc["event"]
        await lucy.client.get_workflow_handle(
            task_workflow_id(doc["team_id"], ev["channel"], ev["ts"])
        ).describe()
    # Nothing half done: every task row still "created" has its workflow.
    async with lucy.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT workflow_id FROM tasks WHERE status = 'created' AND created_at >= :since"),
            {"since": since},
        )
        created = [w for w in rows.scalars() if w not in _CHECKED]
    for workflow_id in created:
        try:
            await lucy.client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            raise AssertionError(f"task row {workflow_id} has no workflow") from err
        _CHECKED.add(workflow_id)
