"""Generated files: the ``create_file`` tool (activity ``tools.file_output``).

Checks the model's arguments, builds the file (:mod:`capabilities.tools.activities.documents`: CSV, XLSX or
PDF) and uploads it to the task's thread with Slack's external upload flow, through slack-sdk's
``files_upload_v2``:
``files.getUploadURLExternal`` (filename, length) -> ``POST`` of the bytes to the returned
``upload_url`` -> ``files.completeUploadExternal`` (``files=[{id, title}]``, ``channel_id``,
``thread_ts``). The client is the injected ``AsyncWebClient`` (its ``base_url``, no retry
handlers), so Temporal owns retries.

Idempotency across activity retries: the uploaded file's *name* carries a short key derived
from the workflow id and step (``report-1a2b3c4d5e.xlsx``; the title people see stays
``report.xlsx``). A retry (attempt > 1) first reads the thread (``conversations.replies``) and,
if a file with that name is already shared there, returns it instead of uploading again. An
upload that never reached ``files.completeUploadExternal`` was never shared; Slack discards it
and the retry uploads afresh. (Slack shares files asynchronously, so a retry within moments of
a lost ``completeUploadExternal`` response could still miss the share; retries back off for at
least a second first.)

Files over 5 MB are refused. The build runs in a thread so it does not stall the worker's event
loop.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.tools.activities.documents import FORMATS, Built, Spec, build
from capabilities.tools.activities.http_errors import rejected
from capabilities.tools.activities.liveness import keeps_beating
from capabilities.tools.activities.slack_history import (
    require_slack,
    slack_transport_error,
    tool_error_from_slack,
)
from capabilities.tools.contracts import ToolRequest, ToolResult
from capabilities.tools.deps import ToolDeps
from capabilities.tools.spec import NEEDS_SLACK, STRING, TOOL_HEARTBEAT, ToolSpec, retry, schema
from lucy.contracts.errors import ErrorType
from lucy.contracts.ids import idempotency_key

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 100_000
MAX_COLUMNS = 200
MAX_CELL_CHARS = 32_767  # Excel's limit for one cell
MAX_CONTENT_CHARS = 300_000
_LOOKUP_PAGES = 10  # pages of 200 thread replies read by a retry looking for its upload


class FileActivities:
    """Creates files and uploads them to the task's Slack thread."""

    def __init__(self, slack: AsyncWebClient | None) -> None:
        self._slack = slack

    @activity.defn(name="tools.file_output")
    @keeps_beating
    async def create(self, request: ToolRequest) -> ToolResult:
        """Build a CSV, XLSX or PDF from the model's arguments and upload it to the thread.

        Args:
            request: ``arguments`` = ``{format: csv | xlsx | pdf, filename, title?, rows?
                (csv/xlsx; first row = header), content? (pdf: Markdown-ish text or simple HTML)}``.

        Returns:
            "Uploaded report.xlsx (3 rows) to the thread", with ``state={"file_id": ...}``.
        """
        client = require_slack(self._slack)
        spec = _parse_args(request.arguments)
        channel = request.slack_channel_id
        if not channel:
            raise rejected("create_file: this task has no Slack channel to upload to")
        try:
            built = await asyncio.to_thread(build, spec)
        except ApplicationError:
            raise
        except Exception as exc:  # the same input fails the same way: not worth a retry
            raise rejected(
                f"create_file: could not build the {spec.fmt} file ({exc.__class__.__name__}: "
                f"{short_error(exc)}); simplify the content"
            ) from None
        if len(built.data) > MAX_BYTES:
            raise rejected(
                f"create_file: the {spec.fmt} file would be {len(built.data) / 1_048_576:.1f} MB, more "
                f"than {MAX_BYTES // 1_048_576} MB; split it into smaller files or summarise the data"
            )
        upload_name = _upload_name(spec, request)
        where = "the thread" if request.thread_ts else "the channel"
        file_id: str | None = None
        if activity.info().attempt > 1:
            file_id = await _find_uploaded(client, channel, request.thread_ts, upload_name)
            if file_id:
                activity.logger.info(
                    "file already uploaded by an earlier attempt", extra={"file_id": file_id}
                )
        if file_id is None:
            file_id = await _upload(client, spec, built, upload_name, channel, request.thread_ts)
        return ToolResult(
            output=f"Uploaded {spec.filename} ({built.summary}) to {where}",
            state={"file_id": file_id},
        )


# --------------------------------------------------------------------------- arguments


def _parse_args(args: dict[str, Any]) -> Spec:
    fmt = args.get("format")
    if not isinstance(fmt, str) or fmt.strip().lower().lstrip(".") not in FORMATS:
        raise rejected(f"create_file: 'format' must be one of {', '.join(FORMATS)}")
    fmt = fmt.strip().lower().lstrip(".")
    raw_name = args.get("filename")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise rejected("create_file needs a 'filename', e.g. report.xlsx")
    filename = _clean_filename(raw_name, fmt)
    title = args.get("title")
    if title is not None and not isinstance(title, str):
        raise rejected("create_file: 'title' must be a string")
    title = " ".join((title or "").split())[:200] or filename
    rows = args.get("rows")
    content = args.get("content")
    if fmt in ("csv", "xlsx"):
        if rows is None:
            raise rejected(f"create_file: a {fmt} file needs 'rows', a list of rows (first row = header)")
        _check_rows(rows)
        return Spec(fmt, filename, title, rows, None)
    if not isinstance(content, str) or not content.strip():
        hint = (
            " (rows are for csv/xlsx; put a table in content as Markdown or an HTML <table>)" if rows else ""
        )
        raise rejected(f"create_file: a pdf file needs 'content', Markdown-ish text or simple HTML{hint}")
    if len(content) > MAX_CONTENT_CHARS:
        raise rejected(
            f"create_file: 'content' is too long ({len(content)} characters, at most {MAX_CONTENT_CHARS})"
        )
    return Spec(fmt, filename, title, None, content)


def _check_rows(rows: Any) -> None:
    if not isinstance(rows, list) or not rows:
        raise rejected("create_file: 'rows' must be a non-empty list of rows, each a list of cells")
    if len(rows) > MAX_ROWS:
        raise rejected(f"create_file: at most {MAX_ROWS} rows per file, not {len(rows)}")
    total = 0
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise rejected(f"create_file: row {i} must be a list of cells, not {type(row).__name__}")
        if len(row) > MAX_COLUMNS:
            raise rejected(f"create_file: row {i} has {len(row)} cells, at most {MAX_COLUMNS}")
        for cell in row:
            if cell is not None and not isinstance(cell, str | int | float | bool):
                raise rejected(
                    f"create_file: row {i} has a cell that is not text or a number: {type(cell).__name__}"
                )
            if isinstance(cell, str):
                if len(cell) > MAX_CELL_CHARS:
                    raise rejected(
                        f"create_file: a cell in row {i} is longer than {MAX_CELL_CHARS} characters"
                    )
                total += len(cell)
            else:
                total += 8
        if total > MAX_BYTES:
            raise rejected(
                f"create_file: the rows are larger than {MAX_BYTES // 1_048_576} MB; split the data"
            )


def _clean_filename(raw: str, fmt: str) -> str:
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\- ()]+", "_", name).strip(" ._")
    if name.lower().endswith(f".{fmt}"):
        name = name[: -len(fmt) - 1].rstrip(" .")
    return f"{(name or 'file')[:100]}.{fmt}"


def _upload_name(spec: Spec, request: ToolRequest) -> str:
    """The uploaded file's name, carrying the step's idempotency key."""
    key = idempotency_key(request.workflow_id, str(request.step), "create_file")[:10]
    stem = spec.filename[: -len(spec.fmt) - 1]
    return f"{stem}-{key}.{spec.fmt}"


# --------------------------------------------------------------------------- Slack


async def _find_uploaded(client: AsyncWebClient, channel: str, thread_ts: str, name: str) -> str | None:
    """The id of a file named ``name`` already shared in the thread (or channel), if any.

    Thread replies come oldest first, so the pages of a long thread are followed to its end
    (up to ``_LOOKUP_PAGES``); channel history comes newest first and one page suffices.
    """
    what = "conversations.replies" if thread_ts else "conversations.history"
    cursor: str | None = None
    for _ in range(_LOOKUP_PAGES if thread_ts else 1):
        try:
            if thread_ts:
                response = await client.conversations_replies(
                    channel=channel, ts=thread_ts, limit=200, cursor=cursor
                )
            else:
                response = await client.conversations_history(channel=channel, limit=100)
        except SlackApiError as exc:
            raise tool_error_from_slack(exc, what) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise slack_transport_error(exc, what) from None
        for message in response.get("messages") or []:
            for shared in message.get("files") or []:
                if shared.get("name") == name and shared.get("id"):
                    return str(shared["id"])
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            break
    return None


async def _upload(
    client: AsyncWebClient, spec: Spec, built: Built, name: str, channel: str, thread_ts: str
) -> str:
    try:
        response = await client.files_upload_v2(
            filename=name,
            content=built.data,
            title=spec.title,
            channel=channel,
            thread_ts=thread_ts or None,
        )
    except SlackApiError as exc:
        raise tool_error_from_slack(exc, "file upload") from None
    except SlackRequestError as exc:  # the POST of the bytes to the upload URL failed
        raise ApplicationError(
            f"Slack file upload failed ({short_error(exc)})", type=ErrorType.TOOL_RETRYABLE
        ) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise slack_transport_error(exc, "file upload") from None
    file = response.get("file") or {}
    files = response.get("files") or []
    file_id = file.get("id") or (files[0].get("id") if files else None)
    if not file_id:
        raise ApplicationError("Slack file upload answered without a file id", type=ErrorType.TOOL_RETRYABLE)
    return str(file_id)


def short_error(exc: BaseException) -> str:
    """The first part of an error's text, without anything that looks like a URL (upload URLs
    are pre-signed and must not land in the history)."""
    text = re.sub(r"https?://\S+", "<url>", str(exc))
    return text[:200]


# --------------------------------------------------------------------------- the tool


def _build(deps: ToolDeps) -> FileActivities:
    return FileActivities(deps.slack)


CREATE_FILE = ToolSpec(
    name="create_file",
    description="Create a CSV, XLSX or PDF file and upload it to this thread. csv/xlsx take rows "
    "(first row = header); pdf takes content (text or simple HTML).",
    parameters=schema(
        {
            "format": {"type": "string", "enum": ["csv", "xlsx", "pdf"]},
            "filename": STRING,
            "title": STRING,
            "rows": {"type": "array", "items": {"type": "array"}},
            "content": STRING,
        },
        ("format", "filename"),
    ),
    activity=FileActivities.create,
    build=_build,
    timeout=timedelta(seconds=120),
    heartbeat=TOOL_HEARTBEAT,
    retry=retry(4),
    label="file",
    label_arg="filename",
    trusted_output=True,  # a confirmation of what Lucy itself uploaded
    requires=(NEEDS_SLACK,),
    audit_action="data_export",
)
