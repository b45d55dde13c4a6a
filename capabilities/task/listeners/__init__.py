"""Starting and steering tasks from Slack: events, clicks, App Home."""
