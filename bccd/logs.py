"""Structured logs: one JSON object per line on stdout, stable event names, correlation ids via contextvars.

Header values are logged with CR/LF removed; message bodies and tokens are never passed to the logger.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _strip_crlf(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str) and ("\r" in value or "\n" in value):
            event_dict[key] = value.replace("\r", " ").replace("\n", " ")
    return event_dict


def configure_logging(level: str = "info", fmt: str = "json", *, stream: TextIO | None = None) -> None:
    """JSON lines on stdout for the server; CLI commands log to stderr so --json output stays one document."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _strip_crlf,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    # Third-party loggers (aiosmtpd, uvicorn) go to stderr at warning level so stdout stays pure JSON.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for name in ("mail.log", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
