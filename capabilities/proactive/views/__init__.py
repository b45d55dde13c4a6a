"""Block Kit for schedules and monitors."""
