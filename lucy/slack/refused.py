"""Blocks Slack refuses never lose what was to be said.

:func:`without_refused_blocks` makes a Slack call; when Slack refuses its blocks or its view
(``invalid_blocks``, ``invalid_blocks_format``; ``invalid_arguments`` for a view), it logs
which builder made them and makes the call again with the text alone, or with what the caller
gives ``instead`` (a view of plain words). Used by the posting activities and by ingress
(App Home, ephemerals), so the fallback is written once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError

REFUSED_BLOCKS = frozenset({"invalid_blocks", "invalid_blocks_format"})
REFUSED_VIEW = REFUSED_BLOCKS | {"invalid_arguments"}  # Slack's answer to a view it can't take

_log = logging.getLogger(__name__)


def _text_alone(kwargs: Mapping[str, Any], clear: bool) -> dict[str, Any] | None:
    if not kwargs.get("blocks"):
        return None  # nothing to drop: the refusal is not the blocks'
    plain = {k: v for k, v in kwargs.items() if k != "blocks"}
    return {**plain, "blocks": []} if clear else plain


async def without_refused_blocks(
    call: Callable[..., Awaitable[Any]],
    kwargs: dict[str, Any],
    *,
    builder: str,
    clear: bool = False,
    instead: dict[str, Any] | None = None,
    log: logging.Logger | logging.LoggerAdapter[Any] = _log,
) -> Any:
    """``call(**kwargs)``; when Slack refuses the blocks, log which builder made them and send
    the text alone (``clear``: with ``blocks=[]``, so an edited message loses its old blocks),
    or ``call(**instead)`` when given (a view: ``invalid_arguments`` counts as a refusal too),
    rather than lose the message."""
    refusals = REFUSED_VIEW if instead is not None else REFUSED_BLOCKS
    try:
        return await call(**kwargs)
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        fallback = instead if instead is not None else _text_alone(kwargs, clear)
        if error not in refusals or fallback is None:
            raise
    log.warning("Slack refused the blocks; sending the text alone", extra={"builder": builder or "unnamed"})
    return await call(**fallback)
