"""The gate in front of ``POST /slack/events``: no byte of a body is parsed, logged or turned
into a label until Slack's signature over it has been checked.

Each step refuses with a :class:`Refusal` (status, stable error code, a sentence for the
sender); the caller logs :func:`request_metadata` only, never the body or a value from it.

1. Size cap: a ``Content-Length`` over :data:`MAX_BODY_BYTES`, or a body that streams past
   it (chunked, or a lying length), is refused with 413 as soon as it crosses the cap.
2. Signature: exactly one ``X-Slack-Request-Timestamp`` and one ``X-Slack-Signature``, v0,
   within five minutes (``slack_sdk.signature.SignatureVerifier``); otherwise 401.
3. Parse: UTF-8; a JSON object, or a form (whose interactivity ``payload`` field is a JSON
   object); nesting at most :data:`MAX_DEPTH` deep; no NUL or lone surrogate in any string
   (Postgres and Temporal cannot store them); otherwise 400.
4. Shape: the envelope fields Bolt and Lucy's listeners read have the types and lengths Slack
   sends (ids are short strings, ``event`` is an object with a ``type``, ``actions`` is a
   non-empty list of objects...); otherwise 400. Bolt indexes into these fields without
   checking them, so a signed but odd payload would otherwise end in a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any
from urllib.parse import parse_qsl

from slack_sdk.signature import SignatureVerifier
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request

from lucy.metrics import HANDLED_EVENT_TYPES

MAX_BODY_BYTES = 1_000_000  # Slack payloads are far smaller; anything bigger is not Slack
MAX_DEPTH = 64  # Block Kit nests a dozen levels; Bolt and our own code walk payloads recursively
MAX_FORM_FIELDS = 100  # a slash command has about fifteen
SIGNATURE_WINDOW_S = 60 * 5  # SignatureVerifier's window, for the non-UTF-8 check below
ID_LEN = 32  # Slack ids and timestamps: the tables keep them in 32 characters
NAME_LEN = 128  # types, trigger/event/app ids: short machine words (a task's workflow id holds one)
BLOCK_ID_LEN = 255  # Block Kit's limit for action_id, block_id and callback_id

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Refusal(Exception):
    """A request the gate turns away.

    Attributes:
        status: the HTTP status to answer.
        error: a stable error code for the JSON answer.
        message: a sentence for the sender; never contains a value taken from the request.
    """

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def _malformed(message: str) -> Refusal:
    return Refusal(400, "bad_request", message)


TOO_LARGE = Refusal(413, "payload_too_large", f"Slack requests are at most {MAX_BODY_BYTES} bytes")
UNSIGNED = Refusal(401, "invalid_signature", "missing, stale or invalid Slack signature")


def request_metadata(request: Request, body_bytes: int | None) -> dict[str, Any]:
    """What a refusal may log: sizes, the media type, which headers came, the peer address."""
    length = request.headers.get("content-length", "")
    return {
        "content_length": int(length) if length.isascii() and length.isdigit() and len(length) < 16 else None,
        "body_bytes": body_bytes,
        "content_type": _media_type(request.headers)[:64] or None,
        "has_signature": "x-slack-signature" in request.headers,
        "has_timestamp": "x-slack-request-timestamp" in request.headers,
        "remote_addr": request.client.host if request.client else None,
    }


async def read_body(request: Request, *, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, read chunk by chunk and abandoned with 413 as soon as it passes ``limit``.

    Raises:
        Refusal: 413 when too large; 400 when the client went away mid-body.
    """
    too_large = (
        TOO_LARGE if limit == MAX_BODY_BYTES else Refusal(413, "payload_too_large", f"at most {limit} bytes")
    )
    length = request.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and (len(length) > 15 or int(length) > limit):
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        raise _malformed("the client disconnected before the body was complete") from None
    return b"".join(chunks)


def verify_signature(verifier: SignatureVerifier, headers: Headers, body: bytes) -> None:
    """Check Slack's v0 signature over the raw body.

    Raises:
        Refusal: 401 unless exactly one timestamp and one signature header came and they match.
    """
    stamps, signatures = headers.getlist("x-slack-request-timestamp"), headers.getlist("x-slack-signature")
    if len(stamps) != 1 or len(signatures) != 1:
        raise UNSIGNED
    timestamp, signature = stamps[0], signatures[0]
    # SignatureVerifier calls int() on the timestamp and compare_digest() on the signature:
    # junk there ("²", a 5000-digit number, non-ASCII) would raise instead of failing.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12 and signature.isascii()):
        raise UNSIGNED
    try:
        valid = verifier.is_valid(body.decode("utf-8"), timestamp, signature)
    except UnicodeDecodeError:
        # SignatureVerifier signs text, Slack signs bytes: the same v0 HMAC over the raw bytes,
        # so that a signed body that is not UTF-8 gets its 400 from parse(), not a 401.
        fresh = abs(verifier.clock.now() - int(timestamp)) <= SIGNATURE_WINDOW_S
        base = b"v0:" + timestamp.encode() + b":" + body
        digest = hmac.new(verifier.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        valid = fresh and hmac.compare_digest(f"v0={digest}", signature)
    if not valid:
        raise UNSIGNED


def parse(headers: Headers, body: bytes) -> dict[str, Any]:
    """The verified body as the payload document, checked for shape.

    Raises:
        Refusal: 400 with a sentence saying what is wrong (never quoting the body).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("body is not UTF-8") from None
    media = _media_type(headers)
    if media == "application/json":
        document = _json_object(text, "body")
    elif media == "application/x-www-form-urlencoded":
        document = _form(text)
    else:
        raise _malformed("unsupported content type: Slack sends JSON or a form")
    _check_values(document)
    check_shape(document)
    return document


def _media_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except RecursionError:
        raise _malformed(f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:  # also integers too long to convert
        raise _malformed(f"{what} is not valid JSON") from None
    if not isinstance(document, dict):
        raise _malformed(f"{what} is not a JSON object")
    return document


def _form(text: str) -> dict[str, Any]:
    if text.startswith("{"):  # Bolt would read this as JSON; Slack never sends it
        raise _malformed("a form body cannot be a JSON document")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # too many fields, or percent-escapes that are not UTF-8
        raise _malformed(f"form body is not valid (UTF-8, at most {MAX_FORM_FIELDS} fields)") from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise _malformed("a form field appears more than once")
    if "payload" in form:  # interactivity: a JSON document in a form field
        return _json_object(form["payload"], "payload field")
    return form


def _check_values(document: dict[str, Any]) -> None:
    """Nesting depth, and strings Postgres and Temporal can store, without recursion."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _malformed(f"body is nested more than {MAX_DEPTH} levels deep")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and _UNSTORABLE.search(key):
                raise _malformed("body contains a NUL character or a lone surrogate")
            if isinstance(item, str):
                if _UNSTORABLE.search(item):
                    raise _malformed("body contains a NUL character or a lone surrogate")
            elif isinstance(item, dict | list):
                stack.append((item, depth + 1))


# How the envelope fields Bolt and the listeners read must look when present.
_ID, _NAME, _BLOCK, _TEXT = "id", "name", "block kit id", "text"
_REF, _OBJECT, _OBJECTS = "ref", "object", "objects"
_ENVELOPE: dict[str, str] = {
    **dict.fromkeys(
        "id team_id user_id channel_id enterprise_id user_team app_installed_team_id context_team_id"
        " context_enterprise_id ts thread_ts event_ts message_ts".split(),
        _ID,
    ),
    **dict.fromkeys(
        "type subtype channel_type tab bot_id command trigger_id event_id api_app_id token ssl_check".split(),
        _NAME,
    ),
    **dict.fromkeys("action_id block_id callback_id".split(), _BLOCK),
    **dict.fromkeys(
        "text value challenge response_url function_execution_id bot_access_token".split(), _TEXT
    ),
    **dict.fromkeys("team user channel enterprise".split(), _REF),  # an id, or an object with one
    **dict.fromkeys(
        "event message previous_message item assistant_thread container view function function_data".split(),
        _OBJECT,
    ),
    **dict.fromkeys("authorizations response_urls".split(), _OBJECTS),
}
# An element of ``actions`` (its ``text`` is a Block Kit text object, not a string).
_ACTION: dict[str, str] = {
    "action_id": _BLOCK,
    "block_id": _BLOCK,
    "type": _NAME,
    "value": _TEXT,
    "action_ts": _ID,
}
_LIMITS = {_ID: ID_LEN, _NAME: NAME_LEN, _BLOCK: BLOCK_ID_LEN}


def check_shape(document: dict[str, Any]) -> None:
    """Refuse a payload whose envelope Bolt or a listener would trip over.

    Raises:
        Refusal: 400 naming the field (by its path in our table, never its value).
    """
    kind = document.get("type")
    event = document.get("event")
    if kind == "event_callback" and not (isinstance(event, dict) and isinstance(event.get("type"), str)):
        raise _malformed("an event_callback needs an event object with a type")
    if kind in ("block_actions", "interactive_message"):
        actions = document.get("actions")
        if not (isinstance(actions, list) and actions and all(isinstance(a, dict) for a in actions)):
            raise _malformed(f"{kind} needs a non-empty list of action objects")
        if kind == "block_actions" and not all(isinstance(a.get("action_id"), str) for a in actions):
            raise _malformed("every block action needs an action_id")
        for field in ("user", "team", "channel"):  # objects in interactivity, never bare ids
            if document.get(field) is not None and not isinstance(document[field], dict):
                raise _malformed(f"body.{field} must be an object")
    if (
        isinstance(event, dict)
        and isinstance(event.get("type"), str)
        and event["type"] in HANDLED_EVENT_TYPES
    ):
        for field in ("user", "channel", "team"):  # the listeners take these as ids
            _check_field(event, field, _ID, f"body.event.{field}")
        if event["type"].startswith("assistant_thread_"):  # Bolt's Assistant raises without these
            thread = event.get("assistant_thread")
            if not (
                isinstance(thread, dict)
                and isinstance(thread.get("channel_id"), str)
                and isinstance(thread.get("thread_ts"), str)
            ):
                raise _malformed(f"a {event['type']} event needs assistant_thread.channel_id and thread_ts")
    if isinstance(document.get("actions"), list):
        for i, action in enumerate(document["actions"]):
            _check_object(action, _ACTION, f"body.actions[{i}]")
    _check_object(document, _ENVELOPE, "body")


def _check_object(obj: Any, spec: dict[str, str], where: str) -> None:
    stack: list[tuple[Any, dict[str, str], str]] = [(obj, spec, where)]
    while stack:
        current, fields, path = stack.pop()
        if not isinstance(current, dict):
            raise _malformed(f"{path} must be an object")
        for key, want in fields.items():
            if key not in current:
                continue
            value, at = current[key], f"{path}.{key}"
            if want in (_OBJECT, _OBJECTS) or (want == _REF and isinstance(value, dict)):
                if want != _OBJECTS:
                    stack.append((value, _ENVELOPE, at))
                elif isinstance(value, list):
                    stack.extend((item, _ENVELOPE, f"{at}[{i}]") for i, item in enumerate(value))
                else:
                    raise _malformed(f"{at} must be a list of objects")
            else:
                _check_field(current, key, _ID if want == _REF else want, at)


def _check_field(obj: dict[str, Any], key: str, want: str, at: str) -> None:
    value = obj.get(key)
    if value is None:
        return
    if not isinstance(value, str):
        raise _malformed(f"{at} must be a string")
    limit = _LIMITS.get(want)
    if limit is not None and len(value) > limit:
        raise _malformed(f"{at} is longer than {limit} characters")
