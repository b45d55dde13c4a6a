"""Building the files of the ``create_file`` tool: CSV (``csv``), XLSX (openpyxl: bold, frozen
header row, column widths from the content) and PDF (WeasyPrint, from Markdown-ish text or
simple HTML).

Safety: cells that a spreadsheet would run as a formula are kept as text (XLSX: string cells;
CSV: a leading apostrophe, OWASP's advice against CSV injection); the PDF renderer fetches no
URL (only inline ``data:`` images), so model-written HTML cannot read local files or reach the
network. The Markdown-ish conversion runs in time linear in its input: its patterns repeat
classes that exclude their own delimiters, possessively. WeasyPrint is imported lazily (it is
heavy).
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
from dataclasses import dataclass
from typing import Any

FORMATS = ("csv", "xlsx", "pdf")
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
class Spec:
    fmt: str
    filename: str  # what people see: report.xlsx
    title: str
    rows: list[list[Any]] | None
    content: str | None


@dataclass(frozen=True)
class Built:
    data: bytes
    summary: str  # "3 rows", "2 pages"


def build(spec: Spec) -> Built:
    if spec.fmt == "csv":
        assert spec.rows is not None
        return Built(_csv_bytes(spec.rows), _rows_summary(spec.rows))
    if spec.fmt == "xlsx":
        assert spec.rows is not None
        return Built(_xlsx_bytes(spec.rows, spec.title), _rows_summary(spec.rows))
    assert spec.content is not None
    # A title the model gave becomes the heading; the default (the filename) does not.
    data, pages = _pdf_bytes(spec.content, spec.title, heading=spec.title != spec.filename)
    return Built(data, f"{pages} page{'s' if pages != 1 else ''}")


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


_CODE = re.compile(r"`([^`\n]++)`")
_BOLD = re.compile(r"\*\*(?=[^\s*])([^*\n]++)(?<=[^\s*])\*\*")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]++)(?<=[^\s*])\*(?![\w*])")
_ITALIC_UNDERSCORE = re.compile(r"(?<!\w)_(?=[^\s_])([^_\n]++)(?<=[^\s_])_(?!\w)")


def _inline(text: str) -> str:
    out = html.escape(text)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    out = _ITALIC_STAR.sub(r"<em>\1</em>", out)
    return _ITALIC_UNDERSCORE.sub(r"<em>\1</em>", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def markdown_to_html(text: str) -> str:
    """Headings, paragraphs, lists, fenced code, pipe tables, rules, bold/italic/code; all text
    escaped (nothing in ``text`` becomes markup except through these constructs)."""
    writer = _HtmlWriter(text.splitlines())
    while writer.i < len(writer.lines):
        writer.step()
    writer.flush()
    return "\n".join(writer.out)


class _HtmlWriter:
    """Markdown lines to HTML, one construct per :meth:`step`, with the open paragraph or list."""

    def __init__(self, lines: list[str]) -> None:
        self.lines, self.i = lines, 0
        self.out: list[str] = []
        self.para: list[str] = []
        self.list_kind: str | None = None

    def flush(self) -> None:
        """Close the open paragraph and list."""
        if self.para:
            self.out.append("<p>" + "<br>".join(_inline(p) for p in self.para) + "</p>")
            self.para.clear()
        if self.list_kind:
            self.out.append(f"</{self.list_kind}>")
            self.list_kind = None

    def step(self) -> None:
        """Read the construct starting at the current line."""
        stripped = self.lines[self.i].strip()
        if stripped.startswith("```"):
            self.flush()
            self._fence()
        elif not stripped:
            self.flush()
            self.i += 1
        elif heading := re.match(r"(#{1,6})\s+(.*)", stripped):
            self.flush()
            level = len(heading[1])
            self.out.append(f"<h{level}>{_inline(heading[2])}</h{level}>")
            self.i += 1
        elif re.fullmatch(r"(-{3,}|\*{3,}|_{3,})", stripped):
            self.flush()
            self.out.append("<hr>")
            self.i += 1
        elif (
            "|" in stripped
            and self.i + 1 < len(self.lines)
            and _TABLE_RULE.match(self.lines[self.i + 1].strip())
        ):
            self.flush()
            self._table(stripped)
        elif not self._list_item(stripped):
            if self.list_kind:
                self.flush()
            self.para.append(stripped)
            self.i += 1

    def _fence(self) -> None:
        code: list[str] = []
        self.i += 1
        while self.i < len(self.lines) and not self.lines[self.i].strip().startswith("```"):
            code.append(self.lines[self.i])
            self.i += 1
        self.out.append("<pre>" + html.escape("\n".join(code)) + "</pre>")
        self.i += 1

    def _table(self, header: str) -> None:
        table = [
            "<table><thead><tr>",
            *(f"<th>{_inline(c)}</th>" for c in _cells(header)),
            "</tr></thead><tbody>",
        ]
        self.i += 2
        while self.i < len(self.lines) and "|" in self.lines[self.i] and self.lines[self.i].strip():
            table += ["<tr>", *(f"<td>{_inline(c)}</td>" for c in _cells(self.lines[self.i])), "</tr>"]
            self.i += 1
        self.out.append("".join(table) + "</tbody></table>")

    def _list_item(self, stripped: str) -> bool:
        """A bulleted or numbered item (opening its list); False when the line is not one."""
        bullet = re.match(r"[-*+]\s+(.*)", stripped)
        item = bullet or re.match(r"\d+[.)]\s+(.*)", stripped)
        if item is None:
            return False
        kind = "ul" if bullet else "ol"
        if self.para or self.list_kind != kind:
            self.flush()
            self.out.append(f"<{kind}>")
            self.list_kind = kind
        self.out.append(f"<li>{_inline(item[1])}</li>")
        self.i += 1
        return True
