"""The search attributes a task workflow starts with (status ``created``), whoever starts it:
ingress for a Slack message, email or webhook, or a Temporal Schedule for a scheduled run."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from lucy.contracts import SA_CHANNEL, SA_SOURCE, SA_STATUS, SA_THREAD, SA_USER, SA_WORKSPACE, TaskStatus


def task_search_attributes(
    team: str, user: str, channel: str, thread_ts: str, source: str, *more: SearchAttributePair[Any]
) -> TypedSearchAttributes:
    """Workspace, user, channel, thread (``none`` outside a thread), source, ``created``, then ``more``."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_WORKSPACE, team),
            SearchAttributePair(SA_USER, user),
            SearchAttributePair(SA_CHANNEL, channel),
            SearchAttributePair(SA_THREAD, thread_ts or "none"),
            SearchAttributePair(SA_SOURCE, source),
            SearchAttributePair(SA_STATUS, TaskStatus.CREATED.value),
            *more,
        ]
    )
