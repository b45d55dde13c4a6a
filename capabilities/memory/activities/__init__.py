"""The memory capability's activities: the ``remember``, ``recall`` and ``forget`` tools, the
memories a task starts with, and the nightly upkeep."""
