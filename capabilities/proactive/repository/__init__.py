"""The stored schedules and monitors."""
