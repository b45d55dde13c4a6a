"""Email activities: replies and attachments."""
