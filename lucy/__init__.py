"""Lucy's kernel, shared by every role: settings, logging, contracts, the database, the Temporal
client factory, what Lucy shows in Slack, and the composition roots (the ``lucy`` CLI and the
worker) that wire workflows, activities and ingress together."""
