"""Generated files: the ``create_file`` tool (activity ``tools.file_output``).

Builds a CSV (``csv`` module), XLSX (openpyxl: bold, frozen header row, column widths from the
content) or PDF (WeasyPrint, from Markdown-ish text or simple HTML) and uploads it to the task's
thread with Slack's external upload flow, through slack-sdk's ``files_upload_v2``:
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

Safety: cells that a spreadsheet would run as a formula are kept as text (XLSX: string cells;
CSV: a leading apostrophe, OWASP's advice against CSV injection); the PDF renderer fetches no
URL (only inline ``data:`` images), so model-written HTML cannot read local files or reach the
network; files over 5 MB are refused. WeasyPrint is imported lazily (it is heavy) and the build
runs in a thread so it does not stall the worker's event loop.
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import math
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http_errors import rejected
from activities.tools.slack_history import require_slack, slack_transport_error, tool_error_from_slack
from lucy.contracts import ErrorType, ToolRequest, ToolResult, idempotency_key

FORMATS = ("csv", "xlsx", "pdf")
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 100_000
MAX_COLUMNS = 200
MAX_CELL_CHARS = 32_767  # Excel's limit for one cell
MAX_CONTENT_CHARS = 300_000
_LOOKUP_PAGES = 10  # pages of 200 thread replies read by a retry looking for its upload
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?%?$")
_HTML_TAG = re.compile(
    r"<(p|h[1-6]|table|thead|tbody|tr|td|th|ul|ol|li|div|span|br|hr|strong|b|em|i|pre|code|"
    r"html|body|section|article|blockquote|a)\b[^>]*>",
    re.IGNORECASE,
)
_PDF_CSS = """
@page { size: A4; margin: 2cm;
  @bottom-right { content: counter(page) " / " counter(pages); font-size: 9pt; color: #666; } }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 11pt; line-height: 1.45; }
h1 { font-size: 20pt; margin: 0 0 12pt; } h2 { font-size: 15pt; } h3 { font-size: 12.5pt; }
table { border-collapse: collapse; width: 100%; margin: 8pt 0; font-size: 10pt; }
th, td { border: 1px solid #bbb; padding: 4pt 6pt; text-align: left; vertical-align: top; }
th { background: #eee; }
pre { background: #f5f5f5; padding: 8pt; white-space: pre-wrap; font-size: 9pt; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 9.5pt; }
"""


@dataclass(frozen=True)
class _Spec:
    fmt: str
    filename: str  # what people see: report.xlsx
    title: str
    rows: list[list[Any]] | None
    content: str | None


@dataclass(frozen=True)
class _Built:
    data: bytes
    summary: str  # "3 rows", "2 pages"


class FileActivities:
    """Creates files and uploads them to the task's Slack thread."""

    def __init__(self, slack: AsyncWebClient | None) -> None:
        self._slack = slack

    @activity.defn(name="tools.file_output")
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
            built = await asyncio.to_thread(_build, spec)
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


def _parse_args(args: dict[str, Any]) -> _Spec:
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
        return _Spec(fmt, filename, title, rows, None)
    if not isinstance(content, str) or not content.strip():
        hint = (
            " (rows are for csv/xlsx; put a table in content as Markdown or an HTML <table>)" if rows else ""
        )
        raise rejected(f"create_file: a pdf file needs 'content', Markdown-ish text or simple HTML{hint}")
    if len(content) > MAX_CONTENT_CHARS:
        raise rejected(
            f"create_file: 'content' is too long ({len(content)} characters, at most {MAX_CONTENT_CHARS})"
        )
    return _Spec(fmt, filename, title, None, content)


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


def _upload_name(spec: _Spec, request: ToolRequest) -> str:
    """The uploaded file's name, carrying the step's idempotency key."""
    key = idempotency_key(request.workflow_id, str(request.step), "create_file")[:10]
    stem = spec.filename[: -len(spec.fmt) - 1]
    return f"{stem}-{key}.{spec.fmt}"


# --------------------------------------------------------------------------- building


def _build(spec: _Spec) -> _Built:
    if spec.fmt == "csv":
        assert spec.rows is not None
        return _Built(_csv_bytes(spec.rows), _rows_summary(spec.rows))
    if spec.fmt == "xlsx":
        assert spec.rows is not None
        return _Built(_xlsx_bytes(spec.rows, spec.title), _rows_summary(spec.rows))
    assert spec.content is not None
    # A title the model gave becomes the heading; the default (the filename) does not.
    data, pages = _pdf_bytes(spec.content, spec.title, heading=spec.title != spec.filename)
    return _Built(data, f"{pages} page{'s' if pages != 1 else ''}")


def _rows_summary(rows: list[list[Any]]) -> str:
    n = len(rows) - 1  # the first row is the header
    return f"{n} row{'s' if n != 1 else ''}"


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if value.startswith(_FORMULA_START) and not _NUMBER.match(value.strip()):
            return "'" + value  # would run as a formula in a spreadsheet
        return value
    return str(value)


def _csv_bytes(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
    return out.getvalue().encode("utf-8")


def _xlsx_bytes(rows: list[list[Any]], title: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = re.sub(r"[\[\]:*?/\\]", " ", title)[:31].strip() or "Sheet1"
    bold = Font(bold=True)
    widths: dict[int, int] = {}
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if isinstance(value, float) and not math.isfinite(value):
                value = str(value)
            if isinstance(value, str):
                value = ILLEGAL_CHARACTERS_RE.sub("", value)
            cell = ws.cell(row=r, column=c, value=value)
            if isinstance(value, str) and cell.data_type == "f":
                cell.data_type = "s"  # text, never a formula
            if r == 1:
                cell.font = bold
            if r <= 1_000 and value is not None:
                longest = max((len(part) for part in str(value).splitlines()), default=0)
                widths[c] = max(widths.get(c, 0), longest)
    for c, width in widths.items():
        ws.column_dimensions[get_column_letter(c)].width = min(max(width + 2, 8), 60)
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _pdf_bytes(content: str, title: str, *, heading: bool) -> tuple[bytes, int]:
    import weasyprint
    from weasyprint.urls import URLFetcher

    if re.search(r"<html\b", content, re.IGNORECASE):
        document = content
    else:
        body = content if _HTML_TAG.search(content) else markdown_to_html(content)
        top = ""
        if heading and not re.match(r"\s*(#\s|<h1\b)", content, re.IGNORECASE):
            top = f"<h1>{html.escape(title)}</h1>"
        document = (
            f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_PDF_CSS}</style></head><body>{top}{body}</body></html>"
        )
    fetcher = URLFetcher(allowed_protocols={"data"}, timeout=5)  # no network, no local files
    rendered = weasyprint.HTML(string=document, url_fetcher=fetcher).render()
    return rendered.write_pdf(), len(rendered.pages)


# --------------------------------------------------------------------------- Markdown-ish


def _inline(text: str) -> str:
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", r"<em>\1</em>", out)
    out = re.sub(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)", r"<em>\1</em>", out)
    return out


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def markdown_to_html(text: str) -> str:
    """Headings, paragraphs, lists, fenced code, pipe tables, rules, bold/italic/code; all text
    escaped (nothing in ``text`` becomes markup except through these constructs)."""
    lines = text.splitlines()
    out: list[str] = []
    para: list[str] = []
    list_kind: str | None = None

    def flush() -> None:
        nonlocal list_kind
        if para:
            out.append("<p>" + "<br>".join(_inline(p) for p in para) + "</p>")
            para.clear()
        if list_kind:
            out.append(f"</{list_kind}>")
            list_kind = None

    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("```"):
            flush()
            code: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            out.append("<pre>" + html.escape("\n".join(code)) + "</pre>")
            i += 1
            continue
        if not stripped:
            flush()
            i += 1
            continue
        heading = re.match(r"(#{1,6})\s+(.*)", stripped)
        if heading:
            flush()
            level = len(heading[1])
            out.append(f"<h{level}>{_inline(heading[2])}</h{level}>")
            i += 1
            continue
        if re.fullmatch(r"(-{3,}|\*{3,}|_{3,})", stripped):
            flush()
            out.append("<hr>")
            i += 1
            continue
        if "|" in stripped and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1].strip()):
            flush()
            table = [
                "<table><thead><tr>",
                *(f"<th>{_inline(c)}</th>" for c in _cells(stripped)),
                "</tr></thead><tbody>",
            ]
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                table += ["<tr>", *(f"<td>{_inline(c)}</td>" for c in _cells(lines[i])), "</tr>"]
                i += 1
            out.append("".join(table) + "</tbody></table>")
            continue
        item = re.match(r"[-*+]\s+(.*)", stripped)
        numbered = re.match(r"\d+[.)]\s+(.*)", stripped)
        if item or numbered:
            kind = "ul" if item else "ol"
            if para or list_kind != kind:
                flush()
                out.append(f"<{kind}>")
                list_kind = kind
            out.append(f"<li>{_inline((item or numbered)[1])}</li>")  # type: ignore[index]
            i += 1
            continue
        if list_kind:
            flush()
        para.append(stripped)
        i += 1
    flush()
    return "\n".join(out)


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
    client: AsyncWebClient, spec: _Spec, built: _Built, name: str, channel: str, thread_ts: str
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
