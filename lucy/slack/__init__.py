"""Everything Lucy shows in Slack, in one place: text (escaping, Markdown to mrkdwn, splitting,
dates, mentions) and Block Kit (buttons, the progress message, approvals, App Home, answers to
``/lucy``). Pure functions, no I/O: activities and ingress render with them; workflows only say
what to show."""
