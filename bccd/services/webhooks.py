"""Webhook endpoints of a company (issue 9): register, list, change, remove, rotate the secret, test, and
read deliveries. Admins manage their own company's endpoints; another company's endpoint is not found (T1);
`actor=None` is the operator at the CLI, who names the company.

A URL is checked against the SSRF guard when it is registered or changed (and again at each delivery).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.services.runtime import Database
from bccd.services.users import User, require_admin
from bccd.store import users as user_store
from bccd.webhooks import store
from bccd.webhooks.events import EVENT_TYPES, TEST_EVENT
from bccd.webhooks.outbox import write_event
from bccd.webhooks.ssrf import UnsafeEndpoint as UnsafeEndpoint  # re-exported: interfaces map it
from bccd.webhooks.ssrf import resolve
from bccd.webhooks.store import Endpoint as Endpoint

MAX_URL = 2000


def _events(events: Sequence[str] | None) -> list[str]:
    """The subscribed types; none given means all of them."""
    if not events:
        return list(EVENT_TYPES)
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event type(s): {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
    return list(dict.fromkeys(events))


async def _check_url(url: str, allow_private: bool) -> str:
    url = url.strip()
    if len(url) > MAX_URL:
        raise UnsafeEndpoint("webhook URL is too long")
    await resolve(url, allow_private=allow_private)
    return url


async def _company_id(conn: AsyncConnection, actor: User | None, company: int | str | None) -> int:
    if actor is not None:
        return actor.company_id
    if company is None:
        raise ValueError("the company of the webhook is required")
    return (await user_store.get_company(conn, company)).id


async def _own(conn: AsyncConnection, actor: User | None, endpoint_id: int) -> Endpoint:
    require_admin(actor)
    return await store.get_endpoint(conn, endpoint_id, company_id=None if actor is None else actor.company_id)


async def create_endpoint(
    db: Database,
    *,
    actor: User | None,
    url: str,
    events: Sequence[str] | None = None,
    description: str = "",
    company: int | str | None = None,
    allow_private: bool = False,
) -> tuple[Endpoint, str]:
    """A new endpoint and its signing secret (returned once)."""
    require_admin(actor)
    types = _events(events)
    url = await _check_url(url, allow_private)
    async with db.write() as conn:
        company_id = await _company_id(conn, actor, company)
        return await store.create_endpoint(conn, company_id, url=url, events=types, description=description)


async def list_endpoints(
    db: Database, *, actor: User | None, company: int | str | None = None
) -> list[Endpoint]:
    require_admin(actor)
    async with db.read() as conn:
        company_id = None if actor is None and company is None else await _company_id(conn, actor, company)
        return await store.list_endpoints(conn, company_id)


async def get_endpoint(db: Database, endpoint_id: int, *, actor: User | None) -> Endpoint:
    async with db.read() as conn:
        return await _own(conn, actor, endpoint_id)


async def update_endpoint(
    db: Database,
    endpoint_id: int,
    *,
    actor: User | None,
    url: str | None = None,
    events: Sequence[str] | None = None,
    enabled: bool | None = None,
    description: str | None = None,
    allow_private: bool = False,
) -> Endpoint:
    types = None if events is None else _events(events)
    async with db.read() as conn:
        await _own(conn, actor, endpoint_id)
    if url is not None:
        url = await _check_url(url, allow_private)
    async with db.write() as conn:
        await _own(conn, actor, endpoint_id)
        return await store.update_endpoint(
            conn, endpoint_id, url=url, events=types, enabled=enabled, description=description
        )


async def delete_endpoint(db: Database, endpoint_id: int, *, actor: User | None) -> None:
    async with db.write() as conn:
        await _own(conn, actor, endpoint_id)
        await store.delete_endpoint(conn, endpoint_id)


async def rotate_secret(db: Database, endpoint_id: int, *, actor: User | None) -> tuple[Endpoint, str]:
    """A new secret (returned once); the old one still signs deliveries for 24 hours."""
    async with db.write() as conn:
        await _own(conn, actor, endpoint_id)
        secret = await store.rotate_secret(conn, endpoint_id)
        return await store.get_endpoint(conn, endpoint_id), secret


async def send_test(db: Database, endpoint_id: int, *, actor: User | None) -> dict[str, Any]:
    """Queue a `webhook.test` event for this endpoint only; returns the event id receivers will see."""
    async with db.write() as conn:
        endpoint = await _own(conn, actor, endpoint_id)
        data = {"webhook": endpoint.id, "message": "test event from bccd"}
        uid = await write_event(
            conn,
            company_id=endpoint.company_id,
            thread_id=None,
            type_=TEST_EVENT,
            data=data,
            endpoint_ids=[endpoint.id],
        )
    return {"event": uid, "type": TEST_EVENT}


async def list_deliveries(
    db: Database, endpoint_id: int, *, actor: User | None, limit: int = 100
) -> list[dict[str, Any]]:
    async with db.read() as conn:
        await _own(conn, actor, endpoint_id)
        return await store.list_deliveries(conn, endpoint_id, limit=limit)
