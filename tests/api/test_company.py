"""GET/PATCH /api/v1/company (issue 9): every user reads it, admins see never_log and change settings,
nothing crosses companies (T1); a change on one node is what the other serves next."""

from __future__ import annotations

import pytest

from tests.api.nodes import Cluster, cluster
from tests.api.support import Api, assert_error
from tests.helpers import make_mail, send

__all__ = ["cluster"]  # the fixture


async def test_t1_company_read_by_everyone_never_log_by_admins(cluster: Cluster) -> None:
    c = cluster
    patched = await c.on_a("admin").patch("/api/v1/company", json={"never_log": ["Boss@Acme.test"]})
    assert patched.status_code == 200, patched.text
    admin_view = (await c.on_b("admin").get("/api/v1/company")).json()
    assert set(admin_view) == {"id", "name", "sender_policy", "sender_auth", "never_log", "created_at"}
    assert admin_view["id"] == c.world.company_id and admin_view["name"] == "Acme"
    assert admin_view["sender_policy"] == "owner" and admin_view["sender_auth"] == "record"
    assert admin_view["never_log"] == ["boss@acme.test"] and admin_view["created_at"]
    for role in ("owner", "colleague"):
        regular = await c.on_b(role).get("/api/v1/company")
        assert regular.status_code == 200
        assert regular.json() == {**admin_view, "never_log": None}  # a privacy list: admins only
    # Another company's admin sees their own company, never Acme's.
    other = (await c.on_a("outsider").get("/api/v1/company")).json()
    assert other["id"] == c.world.other_company_id and other["never_log"] == []
    assert_error(await c.a.as_(None).get("/api/v1/company"), 401, "unauthorized")


async def test_t1_only_admins_change_their_own_company(cluster: Cluster) -> None:
    c = cluster
    for role in ("owner", "colleague"):
        refused = await c.on_a(role).patch("/api/v1/company", json={"sender_policy": "any"})
        assert_error(refused, 403, "forbidden")
    changed = await c.on_a("admin").patch(
        "/api/v1/company",
        json={
            "sender_policy": "company",
            "sender_auth": "require",
            "never_log": ["@News.Example", "x@y.test"],
        },
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["sender_policy"], body["sender_auth"]) == ("company", "require")
    assert body["never_log"] == ["news.example", "x@y.test"]
    assert (await c.on_b("owner").get("/api/v1/company")).json()["sender_auth"] == "require"
    # Only what is given changes; [] empties the list.
    only = (await c.on_b("admin").patch("/api/v1/company", json={"never_log": []})).json()
    assert (only["sender_policy"], only["sender_auth"], only["never_log"]) == ("company", "require", [])
    assert (await c.on_b("admin").patch("/api/v1/company", json={})).json() == only
    # The outsider's PATCH changes their company only.
    assert (await c.on_a("outsider").patch("/api/v1/company", json={"sender_policy": "any"})).json()[
        "id"
    ] == c.world.other_company_id
    assert (await c.on_a("admin").get("/api/v1/company")).json()["sender_policy"] == "company"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sender_policy": "everyone"}, "sender_policy"),
        ({"sender_auth": "strict"}, "sender_auth"),
        ({"never_log": ["not a domain"]}, "never_log"),
        ({"never_log": "acme.example"}, "never_log"),
        ({"never_log": ["a@"]}, "never_log"),
        ({"never_log": ["x.example"] * 1001}, "never_log"),
        ({"name": "Renamed"}, "name"),
    ],
)
async def test_bad_settings_are_a_422(cluster: Cluster, body: dict[str, object], field: str) -> None:
    response = await cluster.on_a("admin").patch("/api/v1/company", json=body)
    assert assert_error(response, 422, "validation_error")["field"] == field
    assert (await cluster.on_a("admin").get("/api/v1/company")).json()["sender_policy"] == "owner"


async def test_settings_take_effect_on_the_next_mail(api: Api) -> None:
    """The stored forms are the ones SMTP intake uses: a never-log domain is no participant, and the
    sender policy decides at once (no per-process copy of the settings)."""
    patched = await api.admin.patch("/api/v1/company", json={"never_log": ["@Client.TEST"]})
    assert patched.status_code == 200, patched.text
    thread = await api.mail_thread(to="Carol <carol@client.test>", cc="Dan <dan@partner.test>")
    assert [p["address"] for p in thread["participants"]] == ["dan@partner.test"]
    stranger = make_mail(sender="Mallory <mallory@elsewhere.test>")
    envelope = {"mail_from": "mallory@elsewhere.test"}
    assert (await send(api.app.smtp.port, [api.world.bcc], stranger, **envelope)).code != 250  # owner
    await api.admin.patch("/api/v1/company", json={"sender_policy": "any"})
    assert (await send(api.app.smtp.port, [api.world.bcc], stranger, **envelope)).code == 250
