"""Lucy by capability: each one's workflow part, activities, listeners, views."""
