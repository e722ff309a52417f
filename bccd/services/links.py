"""Manual link changes (SPEC M1–M5): permission check, database compare-and-set, history, log — in one place.

The CLI and the HTTP API both call these; each change is one write transaction.
"""

from __future__ import annotations

from bccd.logs import get_logger
from bccd.permissions import actor_name, check_thread_access, check_visibility_change
from bccd.services.runtime import Database
from bccd.store.directory import item_internal_id, record_internal_id
from bccd.store.thread_views import get_thread
from bccd.store.threads import clear_item, set_item, set_record_link, set_visibility, thread_header
from bccd.store.users import User
from bccd.thread_models import ThreadView

log = get_logger("bccd.linking")


async def link_item(
    db: Database, thread_id: int, kind: str, external_id: str, *, actor: User | None, replace: bool = False
) -> tuple[str, ThreadView]:
    """M2/M4: link the thread to any item of its company. Raises AlreadyLinked (409) unless `replace`."""
    async with db.write() as conn:
        header = await thread_header(conn, thread_id)
        check_thread_access(actor, header, write=True)
        item_id = await item_internal_id(conn, header.company_id, kind, external_id)
        result = await set_item(conn, thread_id, item_id, actor=actor_name(actor), replace=replace)
        thread = await get_thread(conn, thread_id)
    log.info(
        "link_changed",
        thread=thread_id,
        action=result,
        item={"type": kind, "id": external_id},
        actor=actor_name(actor),
    )
    return result, thread


async def unlink_item(db: Database, thread_id: int, *, actor: User | None) -> tuple[bool, ThreadView]:
    async with db.write() as conn:
        header = await thread_header(conn, thread_id)
        check_thread_access(actor, header, write=True)
        changed = await clear_item(conn, thread_id, actor=actor_name(actor))
        thread = await get_thread(conn, thread_id)
    if changed:
        log.info("link_changed", thread=thread_id, action="unlinked", actor=actor_name(actor))
    return changed, thread


async def link_record(
    db: Database, thread_id: int, kind: str, external_id: str, *, actor: User | None, linked: bool
) -> tuple[bool, ThreadView]:
    """M3: link or unlink a person or organization by hand."""
    async with db.write() as conn:
        header = await thread_header(conn, thread_id)
        check_thread_access(actor, header, write=True)
        record_id = await record_internal_id(conn, header.company_id, kind, external_id)
        changed = await set_record_link(
            conn, thread_id, kind, record_id, actor=actor_name(actor), linked=linked
        )
        thread = await get_thread(conn, thread_id)
    if changed:
        log.info(
            "link_changed",
            thread=thread_id,
            action=("link_" if linked else "unlink_") + kind,
            record=external_id,
            actor=actor_name(actor),
        )
    return changed, thread


async def change_visibility(
    db: Database, thread_id: int, visibility: str, *, actor: User | None
) -> tuple[bool, ThreadView]:
    async with db.write() as conn:
        header = await thread_header(conn, thread_id)
        check_visibility_change(actor, header)
        changed = await set_visibility(conn, thread_id, visibility, actor=actor_name(actor))
        thread = await get_thread(conn, thread_id)
    if changed:
        log.info("visibility_changed", thread=thread_id, visibility=visibility, actor=actor_name(actor))
    return changed, thread
