"""The pure rules of MCP servers: names, schemas the model may be shown, risk by annotation and
override, which URLs may be added, and answers that stay within Slack's limits."""

from __future__ import annotations

from typing import Any

from capabilities.mcp import rules, views
from capabilities.mcp.repository import ServerRow

OBJECT: dict[str, Any] = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _tool(name: str, schema: Any = OBJECT, read_only: bool = False) -> dict[str, Any]:
    return {"name": name, "description": f"{name} things", "input_schema": schema, "read_only": read_only}


def test_offered_names_split_back_one_way_only():
    assert rules.offered_name("ops", "delete__row") == "mcp__ops__delete__row"
    assert rules.split_name("mcp__ops__delete__row") == ("ops", "delete__row")
    assert rules.split_name("exec") is None and rules.split_name("mcp__Ops__x") is None


def test_a_schema_a_provider_would_refuse_is_skipped_with_the_reason():
    cap = 2_000
    assert rules.schema_problem(OBJECT, max_bytes=cap) is None
    assert "root" in str(rules.schema_problem({"type": "string"}, max_bytes=cap))
    assert "anyOf" in str(rules.schema_problem({"type": "object", "anyOf": [OBJECT]}, max_bytes=cap))
    assert "valid JSON Schema" in str(
        rules.schema_problem({"type": "object", "properties": 3}, max_bytes=cap)
    )
    big = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(200)}}
    assert "cap" in str(rules.schema_problem(big, max_bytes=cap))


def test_a_listing_keeps_good_tools_and_says_why_others_were_skipped():
    listing = rules.check_listing(
        "ops",
        [
            _tool("weather", read_only=True),
            _tool("bad.name"),
            _tool("x" * 70),
            _tool("odd", {"type": "array"}),
        ],
        max_bytes=4_000,
        max_tools=10,
    )
    assert [t["name"] for t in listing.tools] == ["weather"]
    assert {s["tool"] for s in listing.skipped} == {"bad.name", "x" * 70, "odd"}
    capped = rules.check_listing("ops", [_tool("a"), _tool("b")], max_bytes=4_000, max_tools=1)
    assert [t["name"] for t in capped.tools] == ["a"] and "more than 1" in capped.skipped[0]["why"]


def test_risk_is_low_only_for_read_only_and_an_admin_has_the_last_word():
    assert rules.risk_of(True) == "low" and rules.risk_of(False) == "high"
    assert rules.risk_of(True, "high") == "high" and rules.risk_of(False, "low") == "low"
    catalog = {"tools": [_tool("weather", read_only=True), _tool("drop")]}
    tools = {t.tool: t for t in rules.workspace_tools("ops", catalog, {"weather": "high"})}
    assert (tools["weather"].risk, tools["drop"].risk) == ("high", "high")
    assert tools["weather"].read_only and tools["weather"].name == "mcp__ops__weather"


def test_outside_development_a_server_is_reached_over_https_unless_allowed():
    allowed = rules.allowed_hosts(" 127.0.0.1:18086 , Intranet.example:80")
    assert rules.url_problem("ftp://x.example", allowed_hosts=allowed, production=False) is not None
    assert rules.url_problem("http://mcp.example.com/mcp", allowed_hosts=allowed, production=False) is None
    assert "https" in str(
        rules.url_problem("http://mcp.example.com/mcp", allowed_hosts=allowed, production=True)
    )
    assert rules.url_problem("http://127.0.0.1:18086/mcp", allowed_hosts=allowed, production=True) is None
    assert rules.url_problem("http://intranet.example/mcp", allowed_hosts=allowed, production=True) is None
    assert "--token" in str(
        rules.url_problem("https://me:pw@mcp.example.com/", allowed_hosts=allowed, production=False)
    )


def test_answers_escape_the_server_s_words_and_fit_slack():
    hostile = "<!channel> & *bold* " * 400
    catalog = rules.check_listing(
        "ops", [{**_tool(f"t{i}"), "description": hostile} for i in range(60)], max_bytes=4_000, max_tools=64
    ).as_catalog()
    text = views.server_text("head", "ops", catalog, {})
    assert len(text) <= views.TEXT_LIMIT and "<!channel>" not in text
    row = ServerRow("ops", "https://x.example/" + "<&>" * 300, catalog, {}, True, "U1", None)
    listed = views.list_text([row] * 5)
    assert len(listed) <= views.TEXT_LIMIT and "<&>" not in listed
