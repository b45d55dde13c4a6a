"""A workspace's own tools from its MCP servers: ``/lucy mcp`` (listeners), the checked catalog
(rules, repository), the SDK client, and the one activity that runs any MCP tool (activities).
See docs/mcp.md."""
