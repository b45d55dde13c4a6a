"""The task: one durable workflow per request, its activities, its Slack listeners and views."""
