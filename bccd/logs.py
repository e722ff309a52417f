"""Structured logs: one JSON object per line on stdout, stable event names, correlation ids via contextvars.

Every log line goes through one pipeline, bccd's own and the libraries' alike (aiosmtpd's `mail.log`,
uvicorn, asyncio): values have CR/LF replaced and every other control or bidi character escaped, so
attacker bytes never reach an operator's terminal raw. Library records become the event `library_log`
with `logger` and `message` fields. Failures are logged with `error_fields(exc)`: the exception type, a
stable `error_code` (bccd.error_codes) and a scrubbed message; the traceback only at debug level.
Message bodies and tokens are never passed to the logger.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from bccd.error_codes import classify, scrubbed_message
from bccd.textsafe import escape_terminal

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
LIBRARY_LOGGERS = ("mail.log", "uvicorn", "uvicorn.error", "uvicorn.access", "asyncio")
LIBRARY_EVENT = "library_log"
_state = {"debug": False}


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return escape_terminal(value.replace("\r", " ").replace("\n", " "))
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _sanitize(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if key not in ("exc_info", "_record", "_from_structlog"):
            event_dict[key] = _clean(value)
    return event_dict


def _library_event(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A stdlib record from a library: one stable event name; its text is a field like any other."""
    record = event_dict.get("_record")
    event_dict["message"] = event_dict.get("event")
    event_dict["event"] = LIBRARY_EVENT
    event_dict["logger"] = record.name if isinstance(record, logging.LogRecord) else "unknown"
    return event_dict


class _BccdHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler bccd installed on the root logger, so reconfiguring replaces only it."""


def configure_logging(level: str = "info", fmt: str = "json", *, stream: TextIO | None = None) -> None:
    """JSON lines on stdout for the server; CLI commands log to stderr so --json output stays one document."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    out = stream or sys.stdout
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    _state["debug"] = level == "debug"
    structlog.configure(
        processors=[*shared, _sanitize, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the standard library: the same processors render their records into the same
    # stream, at warning level (info at debug) so stdout stays pure JSON and aiosmtpd's per-command
    # chatter stays out.
    handler = _BccdHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _library_event],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _sanitize,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _BccdHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    library_level = logging.INFO if level == "debug" else max(logging.WARNING, _LEVELS[level])
    root.setLevel(library_level)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(library_level)
        for stray in [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]:
            logger.removeHandler(stray)  # e.g. a handler of uvicorn's own config writing raw text
        logger.propagate = True


def error_fields(exc: BaseException) -> dict[str, Any]:
    """Fields for a failure line: `error` (type), `error_code` (stable), `error_message` (scrubbed;
    not for `internal` errors).

    At debug level the traceback comes too (`exc_info`), which may quote values the scrubbed message
    leaves out; debug logs are for a developer's machine, not a shared log store.
    """
    code = classify(exc)
    fields: dict[str, Any] = {"error": type(exc).__name__, "error_code": code}
    if code != "internal":
        # A driver's or the OS's own words, scrubbed. An unclassified exception's text could quote
        # anything (a body, a token): it is left out, and the traceback at debug level says the rest.
        fields["error_message"] = scrubbed_message(exc)
    if _state["debug"]:
        fields["exc_info"] = exc
    return fields


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
