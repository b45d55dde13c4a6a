"""Approval activities: posting, deciding, sealed arguments."""
