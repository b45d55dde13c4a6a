"""The rules of a workspace's MCP servers, in one place and pure: names, which URLs may be
added, which tool schemas the model is shown, and the risk of each tool.

* **Names.** A server is called ``[a-z][a-z0-9-]{0,19}`` (no underscore, so
  ``mcp__<server>__<tool>`` splits one way only); a tool's name must be ``[A-Za-z0-9_-]`` and the
  offered name at most 64 characters (what OpenAI-compatible providers accept).
* **Schemas.** A tool's input schema must be a valid JSON Schema (checked with ``jsonschema``)
  whose root is ``{"type": "object"}`` without a top-level ``oneOf``/``anyOf``/``allOf``/
  ``enum``/``not`` (providers refuse those), and at most ``LUCY_MCP_MAX_SCHEMA_BYTES`` as JSON.
  Anything else is skipped, with the reason shown to the admin.
* **Risk.** ``readOnlyHint: true`` is low; everything else (destructive, open-world,
  unannotated) is high. The annotations are the server's claim: an admin's override
  (``/lucy mcp risk``) wins.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from capabilities.tools.contracts import WorkspaceTool

PREFIX = "mcp__"
SEPARATOR = "__"
SERVER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
OFFERED_NAME_LIMIT = 64
DESCRIPTION_LIMIT = 1000
_TOP_LEVEL_REFUSED = ("oneOf", "anyOf", "allOf", "enum", "not")
LOW, HIGH = "low", "high"


def offered_name(server: str, tool: str) -> str:
    """What the model sees: ``mcp__<server>__<tool>``."""
    return f"{PREFIX}{server}{SEPARATOR}{tool}"


def split_name(name: str) -> tuple[str, str] | None:
    """``(server, tool)`` of an offered name, or None when it is not one."""
    if not name.startswith(PREFIX):
        return None
    server, sep, tool = name[len(PREFIX) :].partition(SEPARATOR)
    return (server, tool) if sep and SERVER_NAME.match(server) and tool else None


def schema_problem(parameters: object, *, max_bytes: int) -> str | None:
    """Why the model may not be shown this input schema, or None when it may."""
    if not isinstance(parameters, dict):
        return "its input schema is not a JSON object"
    if parameters.get("type") != "object":
        return 'its input schema\'s root is not {"type": "object"}'
    refused = [k for k in _TOP_LEVEL_REFUSED if k in parameters]
    if refused:
        return f"its input schema has a top-level {refused[0]}, which model providers refuse"
    try:
        size = len(json.dumps(parameters, ensure_ascii=False).encode())
    except (TypeError, ValueError):
        return "its input schema is not plain JSON"
    if size > max_bytes:
        return f"its input schema is {size} bytes, over the {max_bytes}-byte cap"
    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError as exc:
        return f"its input schema is not valid JSON Schema ({exc.message[:120]})"
    return None


def risk_of(read_only_hint: bool, override: str | None = None) -> str:
    """``low`` for a tool the server says only reads, ``high`` otherwise; an admin's word wins."""
    if override in (LOW, HIGH):
        return override
    return LOW if read_only_hint else HIGH


@dataclass(frozen=True)
class Listing:
    """What one listing of a server gave: the tools Lucy may offer and those it skipped."""

    tools: list[dict[str, Any]]
    skipped: list[dict[str, str]]

    def as_catalog(self) -> dict[str, Any]:
        return {"tools": self.tools, "skipped": self.skipped}


def check_listing(server: str, raw: list[dict[str, Any]], *, max_bytes: int, max_tools: int) -> Listing:
    """The server's tools (``name``, ``description``, ``input_schema``, ``read_only``) as Lucy
    will offer them, each checked; the others skipped with a plain reason."""
    tools: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for item in raw:
        name = str(item.get("name") or "")
        problem = _name_problem(server, name) or schema_problem(item.get("input_schema"), max_bytes=max_bytes)
        if problem is None and len(tools) >= max_tools:
            problem = f"the server has more than {max_tools} tools (LUCY_MCP_MAX_TOOLS_PER_SERVER)"
        if problem is not None:
            skipped.append({"tool": name[:80], "why": problem})
            continue
        description = " ".join(str(item.get("description") or "").split())
        tools.append(
            {
                "name": name,
                "description": description[:DESCRIPTION_LIMIT],
                "input_schema": item["input_schema"],
                "read_only": bool(item.get("read_only")),
            }
        )
    return Listing(tools=tools, skipped=skipped)


def _name_problem(server: str, name: str) -> str | None:
    if not _TOOL_NAME.match(name):
        return "its name has characters other than letters, digits, _ and -"
    if len(offered_name(server, name)) > OFFERED_NAME_LIMIT:
        return f"mcp__{server}__{name} is longer than {OFFERED_NAME_LIMIT} characters"
    return None


def workspace_tools(server: str, catalog: dict[str, Any], overrides: dict[str, Any]) -> list[WorkspaceTool]:
    """The tools of one server as a task is offered them."""
    found = []
    for tool in catalog.get("tools") or []:
        risk = risk_of(bool(tool.get("read_only")), overrides.get(tool["name"]))
        found.append(
            WorkspaceTool(
                name=offered_name(server, tool["name"]),
                description=f"[MCP server {server}] {tool.get('description') or tool['name']}",
                parameters=tool["input_schema"],
                server=server,
                tool=tool["name"],
                risk=risk,
                read_only=bool(tool.get("read_only")),
            )
        )
    return found


def allowed_hosts(setting: str) -> frozenset[str]:
    """``LUCY_MCP_ALLOWED_HOSTS`` as a set of lower-case ``host:port``."""
    return frozenset(p.strip().lower() for p in setting.split(",") if p.strip())


def host_port(url: str) -> str:
    """``host:port`` of an http(s) URL (the default port filled in), lower-case; "" if none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if host else ""


def url_problem(url: str, *, allowed_hosts: frozenset[str], production: bool) -> str | None:
    """Why ``url`` may not be an MCP server's address before its addresses are even looked at
    (the egress guard judges those), or None. Outside development and test, a token or a tool's
    arguments never travel in clear text: ``http://`` only to a host listed in
    ``LUCY_MCP_ALLOWED_HOSTS`` (a server beside Lucy)."""
    if len(url) > 2000:
        return "the URL is longer than 2000 characters"
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("http", "https"):
        return "the URL must start with https:// (or http://)"
    if "@" in url.split("//", 1)[-1].split("/", 1)[0] or any(c.isspace() for c in url):
        return "the URL may not carry a user name, a password or spaces (use --token for a secret)"
    if production and scheme == "http" and host_port(url) not in allowed_hosts:
        return "outside development, an MCP server must be reached over https://"
    return None
