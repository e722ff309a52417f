"""Alternative sender addresses (SPEC S5, issue 11): added unconfirmed, confirmed by a one-time code mailed
to the address (bccd.services.alias_codes), or by an admin on the user's behalf; only confirmed ones
satisfy the sender policy.

Who may add one: the user themself or an admin of their company (or the operator at the CLI) — the code
proves the address is the user's, so adding needs no admin right. Who may confirm without a code: an
admin (recorded as `user:<admin id>`) or the operator (`operator`). Replacing the whole list stays
admin-only (bccd.services.users.update_user); its new addresses are unconfirmed and mailed codes too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bccd.logs import get_logger
from bccd.outbound import Mailer
from bccd.services.alias_codes import hash_code, issue, send_code
from bccd.services.runtime import Database
from bccd.services.users import _target, require_admin
from bccd.store import aliases as store
from bccd.store.users import Alias as Alias  # re-exported for interfaces
from bccd.store.users import User

log = get_logger("bccd.services.aliases")


@dataclass(frozen=True, slots=True)
class AliasAdded:
    alias: Alias
    confirmation_sent: bool  # False: no [outbound] relay, or it did not take the mail

    def as_json(self) -> dict[str, object]:
        return {**self.alias.as_json(), "confirmation_sent": self.confirmation_sent}


async def add_alias(
    db: Database,
    ref: int | str,
    address: str,
    *,
    actor: User | None,
    mailer: Mailer | None,
    web_url: str | None = None,
) -> AliasAdded:
    """Add an unconfirmed alternative address and mail it a code (or a new code, if already pending)."""
    now = datetime.now(UTC)
    async with db.write() as conn:
        user = await _target(conn, actor, ref)
        alias, pending = await issue(conn, user, address, now)
    sent = await send_code(mailer, user, pending, web_url)
    log.info("alias_added", user=user.id, actor=_actor(actor))
    return AliasAdded(alias, sent)


async def confirm_alias(
    db: Database, ref: int | str, address: str, *, actor: User | None, code: str | None
) -> Alias:
    """With `code`: the user (or anyone who may act on them) proves the address. Without: an admin or the
    operator confirms on the user's behalf, recorded in `confirmed_by`."""
    now = datetime.now(UTC)
    async with db.write() as conn:
        user = await _target(conn, actor, ref)
        if code is not None:
            code_hash = hash_code(code)
            alias = await store.confirm_with_code(conn, user.id, address, code_hash=code_hash, now=now)
        else:
            require_admin(actor)
            by = store.BY_OPERATOR if actor is None else store.by_user(actor.id)
            alias = await store.confirm_by(conn, user.id, address, by=by, now=now)
    log.info("alias_confirmed", user=user.id, by=alias.confirmed_by, actor=_actor(actor))
    return alias


async def list_aliases(db: Database, ref: int | str, *, actor: User | None) -> tuple[Alias, ...]:
    async with db.read() as conn:
        return (await _target(conn, actor, ref)).alternatives


def _actor(actor: User | None) -> str:
    return "operator" if actor is None else f"user:{actor.id}"
