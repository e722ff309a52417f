"""Who may do what to a thread (SPEC M1, §3 privacy, T1) — checked here and nowhere else."""

from __future__ import annotations

from bccd.store.threads import ThreadHeader
from bccd.store.users import NotFound, User


class Forbidden(PermissionError):
    """A user of the thread's company who is neither its owner nor an admin (M1: 403)."""


def check_thread_access(actor: User | None, thread: ThreadHeader, *, write: bool) -> None:
    """Raise NotFound for another company (T1), Forbidden for a same-company user without rights.

    `actor=None` is the operator at the CLI without `--as`, who has every right.
    Reading: owner, admins, and everyone in the company once the owner shared the thread.
    Writing (link, unlink, persons, organizations): owner and admins only (M1).
    """
    if actor is None:
        return
    if actor.company_id != thread.company_id:
        raise NotFound(f"thread {thread.id} not found")
    if actor.id == thread.owner_id or actor.is_admin:
        return
    if not write and thread.visibility == "shared":
        return
    raise Forbidden("only the thread's owner or an admin may " + ("change" if write else "read") + " it")


def check_visibility_change(actor: User | None, thread: ThreadHeader) -> None:
    """Only the owner shares or un-shares a thread (admins read everything anyway)."""
    if actor is None:
        return
    if actor.company_id != thread.company_id:
        raise NotFound(f"thread {thread.id} not found")
    if actor.id != thread.owner_id:
        raise Forbidden("only the thread's owner may change its visibility")


def actor_name(actor: User | None) -> str:
    return "operator" if actor is None else f"user:{actor.id}"
