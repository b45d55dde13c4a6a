"""The Slack side of schedules and monitors."""
