"""Proactive work's activities: schedules, monitors, chores."""
