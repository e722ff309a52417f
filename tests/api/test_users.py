"""Authentication (T2) and user management: POST/PATCH /users, rotate-address, tokens, /me."""

from __future__ import annotations

from tests.api.support import Api, Caller, assert_error
from tests.helpers import BCC_DOMAIN, make_mail, send


async def test_missing_bad_and_foreign_scheme_tokens_get_401(api: Api) -> None:
    missing = await api.anonymous.get("/api/v1/me")
    assert_error(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"
    for header in ("Bearer nonsense", "Bearer bccd_not-a-real-token", "Basic YTpi", "Bearer " + "x" * 5000):
        assert_error(
            await api.anonymous.get("/api/v1/me", headers={"Authorization": header}), 401, "unauthorized"
        )
    # Every /api/v1 endpoint wants a token, whatever its method.
    assert_error(await api.anonymous.put("/api/v1/deals/1", json={"title": "x"}), 401, "unauthorized")
    assert_error(await api.anonymous.get("/api/v1/threads/1"), 401, "unauthorized")


async def test_me_shows_the_smart_bcc_address(api: Api) -> None:
    me = await api.owner.get("/api/v1/me")
    assert me.status_code == 200
    body = me.json()
    assert body["id"] == api.world.owner.id
    assert body["smart_bcc_address"] == api.world.bcc
    assert body["role"] == "regular" and body["aliases"] == ["alice@home.test"]
    assert "api_token" not in body


async def test_admin_creates_a_user_with_a_token_shown_once(api: Api) -> None:
    created = await api.admin.post(
        "/api/v1/users",
        json={"email": " Dora@Acme.TEST ", "name": "Dora", "aliases": ["dora@home.test"], "token": True},
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    assert body["email"] == "dora@acme.test" and body["company"] == api.world.company_id
    assert body["role"] == "regular" and body["autolink"] is True
    assert body["smart_bcc_address"].endswith("@" + BCC_DOMAIN)
    token = body["api_token"]
    assert token.startswith("bccd_")
    me = await Caller(api.client, token).get("/api/v1/me")
    assert me.json()["id"] == body["id"]
    # Shown once: reading the user again never returns a token.
    again = await api.admin.get(f"/api/v1/users/{body['id']}")
    assert again.status_code == 200 and "api_token" not in again.json()
    listed = await api.admin.get("/api/v1/users")
    assert body["id"] in [u["id"] for u in listed.json()]
    assert api.world.outsider.id not in [u["id"] for u in listed.json()]  # T1


async def test_user_creation_errors(api: Api) -> None:
    assert_error(
        await api.owner.post("/api/v1/users", json={"email": "x@acme.test", "name": "X"}), 403, "forbidden"
    )
    assert_error(await api.owner.get("/api/v1/users"), 403, "forbidden")
    taken = await api.admin.post("/api/v1/users", json={"email": "ALICE@acme.test", "name": "Alice 2"})
    assert_error(taken, 409, "conflict")
    bad = await api.admin.post("/api/v1/users", json={"email": "not an address", "name": "X"})
    assert_error(bad, 422, "validation_error")
    assert bad.json()["field"] == "email"
    missing = await api.admin.post("/api/v1/users", json={"email": "x@acme.test"})
    assert missing.json()["field"] == "name"
    role = await api.admin.post("/api/v1/users", json={"email": "x@acme.test", "name": "X", "role": "root"})
    assert role.status_code == 422 and role.json()["field"] == "role"


async def test_patch_user_rules(api: Api) -> None:
    w = api.world
    # An admin changes role, aliases and autolink of a user of the company.
    changed = await api.admin.patch(
        f"/api/v1/users/{w.colleague.id}",
        json={"role": "admin", "aliases": ["Bob@Home.test"], "autolink": False},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "admin"
    assert changed.json()["autolink"] is False
    # S5: a new alternative address counts only once confirmed; it is listed as pending meanwhile.
    assert changed.json()["aliases"] == []
    [pending] = changed.json()["alternative_addresses"]
    assert (pending["address"], pending["confirmed"]) == ("bob@home.test", False)
    # A regular user changes their own autolink and name, but not their role or addresses.
    mine = await api.owner.patch(f"/api/v1/users/{w.owner.id}", json={"autolink": False, "name": "Alice A."})
    assert mine.status_code == 200 and mine.json()["autolink"] is False and mine.json()["name"] == "Alice A."
    assert_error(
        await api.owner.patch(f"/api/v1/users/{w.owner.id}", json={"role": "admin"}), 403, "forbidden"
    )
    assert_error(await api.owner.patch(f"/api/v1/users/{w.owner.id}", json={"aliases": []}), 403, "forbidden")
    assert_error(
        await api.owner.patch(f"/api/v1/users/{w.admin.id}", json={"autolink": False}), 403, "forbidden"
    )
    # Another company's user does not exist for this admin (T1), nor for its own admin the other way.
    assert_error(
        await api.admin.patch(f"/api/v1/users/{w.outsider.id}", json={"autolink": False}), 404, "not_found"
    )
    assert_error(await api.outsider.get(f"/api/v1/users/{w.owner.id}"), 404, "not_found")
    assert_error(await api.admin.patch("/api/v1/users/999999", json={"autolink": False}), 404, "not_found")
    unknown_field = await api.admin.patch(f"/api/v1/users/{w.owner.id}", json={"email": "new@acme.test"})
    assert unknown_field.status_code == 422 and unknown_field.json()["field"] == "email"


async def test_the_last_admin_cannot_step_down(api: Api) -> None:
    outsider = api.world.outsider  # the only admin of Globex
    response = await api.outsider.patch(f"/api/v1/users/{outsider.id}", json={"role": "regular"})
    assert_error(response, 409, "conflict")
    # With a second admin, stepping down is fine.
    promoted = await api.admin.patch(f"/api/v1/users/{api.world.colleague.id}", json={"role": "admin"})
    assert promoted.status_code == 200
    down = await api.admin.patch(f"/api/v1/users/{api.world.admin.id}", json={"role": "regular"})
    assert down.status_code == 200 and down.json()["role"] == "regular"


async def test_rotate_address_refuses_the_old_one(api: Api) -> None:
    old = api.world.bcc
    rotated = await api.owner.post(f"/api/v1/users/{api.world.owner.id}/rotate-address")
    assert rotated.status_code == 200
    new = rotated.json()["smart_bcc_address"]
    assert new != old and new.endswith("@" + BCC_DOMAIN)
    assert (await api.owner.get("/api/v1/me")).json()["smart_bcc_address"] == new
    # T2: SMTP refuses the old address from now on and accepts the new one.
    refused = await send(api.app.smtp.port, [old], make_mail())
    assert refused.code == 0 and refused.refused[old][0] == 550
    assert (await send(api.app.smtp.port, [new], make_mail())).code == 250
    # A colleague may not rotate someone else's address; an admin may.
    assert_error(
        await api.colleague.post(f"/api/v1/users/{api.world.owner.id}/rotate-address"), 403, "forbidden"
    )
    assert (await api.admin.post(f"/api/v1/users/{api.world.owner.id}/rotate-address")).status_code == 200


async def test_tokens_for_self_or_by_admin(api: Api) -> None:
    w = api.world
    own = await api.colleague.post(f"/api/v1/users/{w.colleague.id}/tokens")
    assert own.status_code == 201 and own.headers["cache-control"] == "no-store"
    assert own.json()["user"] == w.colleague.id
    assert (await Caller(api.client, own.json()["api_token"]).get("/api/v1/me")).json()[
        "id"
    ] == w.colleague.id
    by_admin = await api.admin.post(f"/api/v1/users/{w.owner.id}/tokens")
    assert by_admin.status_code == 201
    assert by_admin.json()["api_token"] != api.tokens["owner"]  # a new token; the old one still works
    assert (await api.owner.get("/api/v1/me")).status_code == 200
    assert_error(await api.colleague.post(f"/api/v1/users/{w.owner.id}/tokens"), 403, "forbidden")
    assert_error(await api.outsider.post(f"/api/v1/users/{w.owner.id}/tokens"), 404, "not_found")
