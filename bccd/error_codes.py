"""Stable error codes and scrubbed messages for failure log lines (issue 12 item 12).

`"error": "OperationalError"` says nothing: a full disk, a lock timeout and a corrupt file all look alike.
`classify` walks an exception's chain (SQLAlchemy's `orig`, `__cause__`, `__context__`) and names what
went wrong with one code from `CODES`; `scrubbed_message` keeps the driver's first line with addresses,
quoted values and token-like strings removed (no bodies, no addresses, no SQL parameters in logs).
docs/operations.md lists every code with the first steps to take.
"""

from __future__ import annotations

import errno
import re

from bccd.textsafe import escape_terminal

CODES = {
    "disk_full": "the disk (or PostgreSQL's) is full",
    "db_locked": "a database lock could not be taken in time (or a deadlock was broken)",
    "db_corrupt": "the database file is damaged",
    "db_readonly": "the database or its directory is read-only",
    "db_unavailable": "the database cannot be opened or reached",
    "db_integrity": "a constraint refused the write",
    "db_error": "another database error",
    "io_error": "the operating system reported an I/O error",
    "permission_denied": "the process may not open or write a file",
    "timeout": "an operation took longer than its deadline",
    "connection_lost": "a network peer closed or reset the connection",
    "internal": "a bug: anything not classified above",
}

_SQLITE = {  # sqlite3.Error.sqlite_errorname (Python 3.11+)
    "SQLITE_FULL": "disk_full",
    "SQLITE_BUSY": "db_locked",
    "SQLITE_LOCKED": "db_locked",
    "SQLITE_CORRUPT": "db_corrupt",
    "SQLITE_NOTADB": "db_corrupt",
    "SQLITE_READONLY": "db_readonly",
    "SQLITE_CANTOPEN": "db_unavailable",
    "SQLITE_IOERR": "io_error",
    "SQLITE_PERM": "permission_denied",
    "SQLITE_CONSTRAINT": "db_integrity",
}
_SQLITE_TEXT = (  # the same, by message, for drivers that carry no error name
    ("database or disk is full", "disk_full"),
    ("database is locked", "db_locked"),
    ("database table is locked", "db_locked"),
    ("malformed", "db_corrupt"),
    ("file is not a database", "db_corrupt"),
    ("readonly database", "db_readonly"),
    ("unable to open database", "db_unavailable"),
    ("disk i/o error", "io_error"),
)
_PG_CLASS = {"08": "db_unavailable", "53": "disk_full", "23": "db_integrity", "57": "db_unavailable"}
_PG_STATE = {
    "40P01": "db_locked",  # deadlock_detected
    "55P03": "db_locked",  # lock_not_available
    "40001": "db_locked",  # serialization_failure
    "25006": "db_readonly",  # read_only_sql_transaction
    "XX001": "db_corrupt",
    "XX002": "db_corrupt",
    "53300": "db_unavailable",  # too_many_connections
}
_ERRNO = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EROFS: "db_readonly",
    errno.EACCES: "permission_denied",
    errno.EPERM: "permission_denied",
    errno.EIO: "io_error",
    errno.ECONNREFUSED: "db_unavailable",
    errno.EHOSTUNREACH: "db_unavailable",
    errno.ENETUNREACH: "db_unavailable",
    errno.ETIMEDOUT: "timeout",
}

_ADDRESS = re.compile(r"[^\s<>()\[\]'\",;:]+@[^\s<>()\[\]'\",;:]+")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\([^()]*=[^()]*\)")
_TOKENISH = re.compile(r"\b[A-Za-z0-9_\-]{24,}\b")
MAX_MESSAGE = 200


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 10:
        item = todo.pop(0)
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        orig = getattr(item, "orig", None)  # sqlalchemy.exc.DBAPIError wraps the driver's error
        todo.extend([orig if isinstance(orig, BaseException) else None, item.__cause__, item.__context__])
    return seen


def _code_of(item: BaseException) -> str | None:
    name = getattr(item, "sqlite_errorname", None)
    if isinstance(name, str):
        for prefix, code in _SQLITE.items():
            if name.startswith(prefix):
                return code
    state = getattr(item, "sqlstate", None) or getattr(item, "pgcode", None)
    if isinstance(state, str) and len(state) == 5:
        return _PG_STATE.get(state) or _PG_CLASS.get(state[:2]) or "db_error"
    if isinstance(item, TimeoutError):
        return "timeout"
    if isinstance(item, OSError) and item.errno in _ERRNO:
        return _ERRNO[item.errno]
    if isinstance(item, ConnectionError):
        return "connection_lost"
    text = str(item).lower()
    for needle, code in _SQLITE_TEXT:
        if needle in text:
            return code
    return None


def classify(exc: BaseException) -> str:
    """The most specific code anywhere in the exception's chain; `internal` if none applies."""
    chain = _chain(exc)
    for item in chain:
        code = _code_of(item)
        if code is not None:
            return code
    modules = [type(item).__module__ for item in chain]
    if any(m.startswith(("sqlalchemy", "sqlite3", "asyncpg", "aiosqlite")) for m in modules):
        return "db_integrity" if "Integrity" in type(exc).__name__ else "db_error"
    return "internal"


def scrub(text: str) -> str:
    """One line, no addresses, no quoted values or key=(value) details, no token-like strings."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = _ADDRESS.sub("<address>", line)
    line = _QUOTED.sub("<value>", line)
    line = _TOKENISH.sub("<redacted>", line)
    line = escape_terminal(line)
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"


def scrubbed_message(exc: BaseException) -> str:
    """The driver's own words when there is a driver error (SQLAlchemy's text carries SQL and parameters)."""
    for item in _chain(exc):
        orig = getattr(item, "orig", None)
        if isinstance(orig, BaseException):
            return scrub(str(orig))
    return scrub(str(exc))
