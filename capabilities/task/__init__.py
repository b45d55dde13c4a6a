"""The task: one durable workflow per piece of work, its activities, listeners, views, record
and contracts."""
