"""Who may do what to a thread (SPEC M1, §3 privacy, T1) — decided here and nowhere else.

The read rule exists in two forms, a Python check for one thread and an SQL predicate for listings; both
come from `VISIBILITY` so they cannot drift apart (tests/test_permissions_policy.py compares them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, or_, true

from bccd.errors import NotFound, PermissionDenied
from bccd.errors import PermissionDenied as Forbidden  # the older name, still used by callers
from bccd.vocabulary import SHARED

__all__ = [
    "VISIBILITY",
    "Forbidden",
    "PermissionDenied",
    "Viewer",
    "VisibilityPolicy",
    "actor_name",
    "check_thread_access",
    "check_visibility_change",
]


class Actor(Protocol):
    """A user acting (bccd.store.users.User satisfies it)."""

    @property
    def id(self) -> int: ...
    @property
    def company_id(self) -> int: ...
    @property
    def is_admin(self) -> bool: ...


class ThreadRef(Protocol):
    """What the rules need to know about a thread (bccd.store.threads.ThreadHeader satisfies it)."""

    @property
    def id(self) -> int: ...
    @property
    def company_id(self) -> int: ...
    @property
    def owner_id(self) -> int: ...
    @property
    def visibility(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Viewer:
    """An actor known only by id, company and role (what a listing filter carries)."""

    id: int
    company_id: int
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class VisibilityPolicy:
    """§3 privacy: a thread is readable by its owner, the company's admins, and — once the owner shared
    it — everyone in the company. Never by another company (T1)."""

    shared: str = SHARED

    def allows(self, thread: ThreadRef, actor: Actor) -> bool:
        if actor.company_id != thread.company_id:
            return False
        return actor.is_admin or actor.id == thread.owner_id or thread.visibility == self.shared

    def sql_predicate(self, actor: Actor, table: Any) -> ColumnElement[bool]:
        """The same rule as a WHERE clause over a threads table (its company_id, owner_id, visibility)."""
        same_company = table.c.company_id == actor.company_id
        if actor.is_admin:
            return and_(same_company, true())
        return and_(same_company, or_(table.c.owner_id == actor.id, table.c.visibility == self.shared))


VISIBILITY = VisibilityPolicy()


def check_thread_access(actor: Actor | None, thread: ThreadRef, *, write: bool) -> None:
    """Raise NotFound for another company (T1), PermissionDenied for a same-company user without rights.

    `actor=None` is the operator at the CLI without `--as`, who has every right.
    Reading: `VISIBILITY`. Writing (link, unlink, persons, organizations): owner and admins only (M1).
    """
    if actor is None:
        return
    if actor.company_id != thread.company_id:
        raise NotFound(f"thread {thread.id} not found")
    if write:
        if actor.id == thread.owner_id or actor.is_admin:
            return
    elif VISIBILITY.allows(thread, actor):
        return
    raise PermissionDenied(
        "only the thread's owner or an admin may " + ("change" if write else "read") + " it"
    )


def check_visibility_change(actor: Actor | None, thread: ThreadRef) -> None:
    """Only the owner shares or un-shares a thread (admins read everything anyway)."""
    if actor is None:
        return
    if actor.company_id != thread.company_id:
        raise NotFound(f"thread {thread.id} not found")
    if actor.id != thread.owner_id:
        raise PermissionDenied("only the thread's owner may change its visibility")


def actor_name(actor: Actor | None) -> str:
    return "operator" if actor is None else f"user:{actor.id}"
