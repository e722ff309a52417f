"""API tokens (T1, T2; issue 9): list without secrets, revoke at once on every node, expiry, last use.

Every test runs on SQLite and PostgreSQL, with two API "nodes" (two processes' worth of engines, apps and
clients) on the one database: what one node revokes, the other refuses on the very next request.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bccd.store.schema import api_tokens
from bccd.store.users import create_token
from tests.api.nodes import Cluster, cluster
from tests.api.support import assert_error

__all__ = ["cluster"]  # the fixture

async def _token_id(c: Cluster, role: str) -> int:
    user = getattr(c.world, role)
    listed = await c.on_a(role).get(f"/api/v1/users/{user.id}/tokens")
    assert listed.status_code == 200, listed.text
    [token] = listed.json()
    assert c.tokens[role].startswith(token["prefix"])
    return int(token["id"])


async def test_t2_list_shows_prefix_and_dates_never_the_token(cluster: Cluster) -> None:
    c, owner = cluster, cluster.world.owner
    issued = await c.on_a("owner").post(f"/api/v1/users/{owner.id}/tokens", json={"expires_in_days": 30})
    assert issued.status_code == 201, issued.text
    assert issued.headers["cache-control"] == "no-store"
    body = issued.json()
    assert body["user"] == owner.id and body["api_token"].startswith(body["prefix"])
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)

    listed = await c.on_b("owner").get(f"/api/v1/users/{owner.id}/tokens")
    assert listed.status_code == 200
    rows = listed.json()
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows) and body["id"] in [r["id"] for r in rows]
    for row in rows:
        assert set(row) == {"id", "user", "prefix", "created_at", "last_used_at", "expires_at", "expired"}
        assert row["user"] == owner.id and row["expired"] is False
    text = listed.text
    for raw in (c.tokens["owner"], body["api_token"]):
        assert raw not in text and raw[len("bccd_") + 4 :] not in text
    async with c.a.db.read() as conn:
        hashes = [r[0] for r in await conn.execute(select(api_tokens.c.token_hash))]
    assert not any(h in text for h in hashes)
    [new] = [r for r in rows if r["id"] == body["id"]]
    assert new["expires_at"] == body["expires_at"] and new["last_used_at"] is None
    [old] = [r for r in rows if r["id"] != body["id"]]
    assert old["expires_at"] is None and old["last_used_at"] is not None  # the listing call used it


async def test_t2_revoked_on_one_node_is_refused_on_the_other_at_once(cluster: Cluster) -> None:
    c = cluster
    token_id = await _token_id(c, "owner")
    assert (await c.on_a("owner").get("/api/v1/me")).status_code == 200  # node A has seen it work
    revoked = await c.on_b("owner").delete(f"/api/v1/tokens/{token_id}")
    assert revoked.status_code == 204, revoked.text
    for node in (c.on_a("owner"), c.on_b("owner")):
        assert_error(await node.get("/api/v1/me"), 401, "unauthorized")
    assert_error(await c.on_a("admin").delete(f"/api/v1/tokens/{token_id}"), 404, "not_found")
    assert (await c.on_a("colleague").get("/api/v1/me")).status_code == 200  # others unaffected


async def test_t1_who_may_list_and_revoke_tokens(cluster: Cluster) -> None:
    c, w = cluster, cluster.world
    owner_token = await _token_id(c, "owner")
    colleague_token = await _token_id(c, "colleague")
    outsider_token = await _token_id(c, "outsider")
    url = f"/api/v1/users/{w.owner.id}/tokens"
    # T1 first: another company's admin finds neither the user nor the token, and cannot tell them apart
    # from ids that do not exist.
    assert_error(await c.on_a("outsider").get(url), 404, "not_found")
    assert_error(await c.on_a("outsider").delete(f"/api/v1/tokens/{owner_token}"), 404, "not_found")
    assert_error(await c.on_a("admin").get(f"/api/v1/users/{w.outsider.id}/tokens"), 404, "not_found")
    assert_error(await c.on_a("admin").delete(f"/api/v1/tokens/{outsider_token}"), 404, "not_found")
    assert_error(await c.on_a("admin").delete("/api/v1/tokens/999999"), 404, "not_found")
    # A regular user: their own tokens only.
    assert_error(await c.on_a("colleague").get(url), 403, "forbidden")
    assert_error(await c.on_a("colleague").delete(f"/api/v1/tokens/{owner_token}"), 403, "forbidden")
    assert (await c.on_a("owner").get(url)).status_code == 200
    # An admin: anyone's in the company.
    assert [t["id"] for t in (await c.on_a("admin").get(url)).json()] == [owner_token]
    assert (await c.on_a("admin").delete(f"/api/v1/tokens/{colleague_token}")).status_code == 204
    assert_error(await c.on_a("colleague").get("/api/v1/me"), 401, "unauthorized")
    # A user revokes their own (the request's own token: the next request is refused).
    assert (await c.on_a("owner").delete(f"/api/v1/tokens/{owner_token}")).status_code == 204
    assert_error(await c.on_a("owner").get("/api/v1/me"), 401, "unauthorized")
    # Every one of them still stands for the outsider's company.
    assert (await c.on_a("outsider").get("/api/v1/me")).status_code == 200
    assert_error(await c.a.as_(None).delete(f"/api/v1/tokens/{outsider_token}"), 401, "unauthorized")


async def test_expired_tokens_answer_401(cluster: Cluster) -> None:
    c = cluster
    token_id = await _token_id(c, "owner")
    async with c.a.db.write() as conn:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(expires_at=past))
        future = await create_token(conn, c.world.owner.id, expires_at=datetime.now(UTC) + timedelta(days=1))
    for node in (c.on_a("owner"), c.on_b("owner")):
        assert_error(await node.get("/api/v1/me"), 401, "unauthorized")
    listed = (await c.a.as_(future).get(f"/api/v1/users/{c.world.owner.id}/tokens")).json()
    assert [t["expired"] for t in listed] == [True, False]
    # An expired token can still be revoked (tidying the list).
    assert (await c.a.as_(future).delete(f"/api/v1/tokens/{token_id}")).status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 3651}, "expires_in_days"),
        ({"expires_in_days": "soon"}, "expires_in_days"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2099-01-01T00:00:00"}, "expires_at"),  # no time zone
        ({"expires_at": "2999-01-01T00:00:00Z"}, "expires_at"),  # beyond ten years
        ({"expires_in_days": 1, "expires_at": "2099-01-01T00:00:00Z"}, "expires_at"),
        ({"ttl": 5}, "ttl"),
    ],
)
async def test_bad_expiry_is_a_422(cluster: Cluster, body: dict[str, object], field: str) -> None:
    response = await cluster.on_a("owner").post(f"/api/v1/users/{cluster.world.owner.id}/tokens", json=body)
    assert assert_error(response, 422, "validation_error")["field"] == field


async def test_issue_with_expires_at_and_without_a_body(cluster: Cluster) -> None:
    c, owner = cluster, cluster.world.owner
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    url = f"/api/v1/users/{owner.id}/tokens"
    issued = (await c.on_a("admin").post(url, json={"expires_at": stamp})).json()
    assert datetime.fromisoformat(issued["expires_at"]) == at
    plain = await c.on_a("owner").post(f"/api/v1/users/{owner.id}/tokens")  # as before issue 9
    assert plain.status_code == 201 and plain.json()["expires_at"] is None
    for raw in (issued["api_token"], plain.json()["api_token"]):
        assert (await c.b.as_(raw).get("/api/v1/me")).json()["id"] == owner.id


async def test_last_used_is_written_at_most_once_a_minute(cluster: Cluster) -> None:
    c = cluster
    token_id = await _token_id(c, "owner")  # that request set last_used_at

    async def last_used() -> datetime:
        async with c.a.db.read() as conn:
            value = (
                await conn.execute(select(api_tokens.c.last_used_at).where(api_tokens.c.id == token_id))
            ).scalar_one()
        assert isinstance(value, datetime)
        return value

    first = await last_used()
    for node in (c.on_a("owner"), c.on_b("owner"), c.on_a("owner")):
        assert (await node.get("/api/v1/me")).status_code == 200
    assert await last_used() == first  # within the minute: no write
    older = first - timedelta(minutes=2)
    async with c.a.db.write() as conn:
        await conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=older))
    assert (await c.on_b("owner").get("/api/v1/me")).status_code == 200
    assert await last_used() > older + timedelta(minutes=1)
