"""The result of the last database write, for readiness (issue 12 item 14).

`/readyz` answering 200 while every write fails (a full disk) sends traffic to a node that can only say
451. `Database.write()` records each write transaction's outcome here; a failure caused by the database
or the operating system (not a business refusal such as a conflict) makes the node unready until the
next write succeeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

from bccd.error_codes import classify


def is_storage_failure(exc: BaseException) -> bool:
    """A failure of the store itself: the driver or the operating system, not the caller's logic."""
    return isinstance(exc, DBAPIError | OSError | TimeoutError)


@dataclass
class WriteHealth:
    ok: bool = True  # no write yet counts as healthy: readiness then rests on the ping
    error_code: str | None = None
    at: float | None = None  # time.time() of the last recorded write

    def succeeded(self) -> None:
        self.ok, self.error_code, self.at = True, None, time.time()

    def failed(self, exc: BaseException) -> None:
        self.ok, self.error_code, self.at = False, classify(exc), time.time()
