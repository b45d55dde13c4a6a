"""Email: AgentMail in (webhook, WebSocket) and replies out."""
