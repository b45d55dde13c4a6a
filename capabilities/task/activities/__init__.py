"""The task's activities: the model, context, records, posting."""
