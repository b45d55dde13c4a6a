"""What a task shows in Slack: progress, answers, plans, App Home."""
