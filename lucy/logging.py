"""structlog set-up: console on a TTY, JSON otherwise; stdlib loggers rendered the same way.

A redaction processor masks tokens and keys wherever they appear: in values of keys that
look secret (``token``, ``secret``, ``api_key``, ``password``, ``authorization``) and in any
string, with :func:`lucy.redact.redact_secrets` (Slack, GitHub, Stripe, AWS, Google and
``sk-`` keys, JWTs, PEM private keys, bearer/basic credentials, Authorization headers, URL
passwords).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

from lucy.redact import REDACTED, redact_secrets

_SECRET_KEY = re.compile(r"(token|secret|api_?key|password|authorization|encryption_keys)", re.I)

_STDLIB_LOGGERS = (
    "temporalio",
    "slack_bolt",
    "slack_sdk",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "sqlalchemy",
    "alembic",
    "httpx",
    "aiohttp",
)


def redact_text(text: str) -> str:
    """Mask anything in ``text`` that looks like a token, key or password.

    Args:
        text: any text.

    Returns:
        ``text`` with secrets replaced by ``[redacted]`` (see :func:`lucy.redact.redact_secrets`).
    """
    return redact_secrets(text)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: (REDACTED if _SECRET_KEY.search(str(k)) and v else _redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact(v) for v in value)
    return value


def _drop_color_message(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict.pop("color_message", None)  # uvicorn's duplicate of the message with ANSI codes
    return event_dict


def redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: masks secret-looking keys and values in the whole event."""
    for key in list(event_dict):
        value = event_dict[key]
        if _SECRET_KEY.search(key) and value and key != "event":
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(value)
    return event_dict


def add_trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` (hex, as tracing backends show them) on
    every line logged inside a span (:mod:`lucy.tracing`), so logs and traces join."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


def configure_logging(level: str = "INFO", *, json_output: bool | None = None) -> None:
    """Configure structlog and route stdlib loggers through the same renderer.

    Args:
        level: minimum level name.
        json_output: force JSON (True) or console (False); default: JSON unless stderr is a TTY.
    """
    if json_output is None:
        json_output = not sys.stderr.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=True)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _drop_color_message,
            redact_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _STDLIB_LOGGERS:
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # Chatty libraries stay at WARNING unless we are debugging.
    quiet = "DEBUG" if level == "DEBUG" else "WARNING"
    for name in ("sqlalchemy.engine", "httpx", "aiohttp.access", "uvicorn.access", "alembic.runtime.plugins"):
        logging.getLogger(name).setLevel(quiet)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger bound to ``name``."""
    return structlog.get_logger(name)
