"""The domain errors every layer raises and every interface maps (HTTP status in bccd.api.errors, exit
status in bccd.cli) — defined once, here.

Another company's record is always `NotFound`, never `PermissionDenied`: callers cannot tell a record of
another tenant from one that does not exist (SPEC T1).
"""

from __future__ import annotations


class BccdError(Exception):
    """Base of bccd's domain errors."""


class NotFound(BccdError, LookupError):
    """The record does not exist (or belongs to another company: callers answer 404 either way, T1)."""


class Conflict(BccdError):
    """The write conflicts with existing data (duplicate login email, the company's last admin, …)."""


class PermissionDenied(BccdError, PermissionError):
    """A user of the right company who lacks the right for this action (M1: 403)."""


# The name the code used before errors were collected here.
Forbidden = PermissionDenied


class ConfirmationFailed(BccdError):
    """A confirmation code that is wrong, expired or not pending (S5 alternative addresses): 422."""


class UnknownReference(BccdError, ValueError):
    """A record names another record (by external id) that does not exist in the company."""


class AlreadyLinked(Conflict):
    """M2: the thread is linked to another item and the request did not ask to replace it."""

    def __init__(self, current: dict[str, str]) -> None:
        super().__init__(f"thread is already linked to {current['type']} {current['id']}")
        self.current = current
