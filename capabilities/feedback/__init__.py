"""Feedback on answers: the buttons and their record."""
