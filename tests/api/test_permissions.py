"""SPEC M1, §3 privacy, T1: who may read, link, unlink and share a thread — the full matrix over HTTP."""

from __future__ import annotations

import pytest

from tests.api.support import Api, Caller
from tests.helpers import add_item, add_org, add_person

# Expected status per actor: the owner, an admin of the company, a regular colleague, another company's admin.
MATRIX: dict[str, dict[str, int]] = {
    "read": {"owner": 200, "admin": 200, "colleague": 403, "outsider": 404},
    "read_raw": {"owner": 200, "admin": 200, "colleague": 403, "outsider": 404},
    "link": {"owner": 200, "admin": 200, "colleague": 403, "outsider": 404},
    "unlink": {"owner": 200, "admin": 200, "colleague": 403, "outsider": 404},
    "link_person": {"owner": 200, "admin": 200, "colleague": 403, "outsider": 404},
    "unlink_organization": {"owner": 200, "admin": 200, "colleague": 403, "outsider": 404},
    # Sharing is the owner's own choice; admins read everything anyway.
    "visibility": {"owner": 200, "admin": 403, "colleague": 403, "outsider": 404},
}
ERROR_CODES = {403: "forbidden", 404: "not_found"}


async def _act(caller: Caller, action: str, tid: int) -> int:
    base = f"/api/v1/threads/{tid}"
    if action == "read":
        response = await caller.get(base)
    elif action == "read_raw":
        response = await caller.get(base + "/raw")
    elif action == "link":
        response = await caller.put(base + "/item", json={"type": "deal", "id": "A"})
    elif action == "unlink":
        response = await caller.delete(base + "/item")
    elif action == "link_person":
        response = await caller.put(base + "/persons/p2")
    elif action == "unlink_organization":
        response = await caller.delete(base + "/organizations/o1")
    else:
        response = await caller.patch(base, json={"visibility": "shared"})
    if response.status_code >= 400:
        assert response.json()["error"] == ERROR_CODES[response.status_code], response.text
    return response.status_code


@pytest.mark.parametrize("action", list(MATRIX))
@pytest.mark.parametrize("actor", ["owner", "admin", "colleague", "outsider"])
async def test_permission_matrix(api: Api, action: str, actor: str) -> None:
    w = api.world
    await add_org(api.app.db, w.company_id, "o1", "Client Corp")
    await add_person(api.app.db, w.company_id, "p1", "Carol", ["carol@client.test"], org="o1")
    await add_person(api.app.db, w.company_id, "p2", "Dave", ["dave@other.test"])
    await add_item(api.app.db, w.company_id, "deal", "A", person="p1")
    thread = await api.mail_thread()  # linked to deal A, person p1, organization o1 automatically
    assert thread["item"] == {"type": "deal", "id": "A"}
    before = (await api.admin.get(f"/api/v1/threads/{thread['id']}")).json()

    status = await _act(api.as_(actor), action, thread["id"])

    assert status == MATRIX[action][actor]
    after = (await api.admin.get(f"/api/v1/threads/{thread['id']}")).json()
    if status >= 400:
        assert after == before  # a refused request changes nothing, not even the history
    elif action in ("link", "read", "read_raw"):
        assert after["history"] == before["history"]  # reading, or linking to the same item: no change
    else:
        assert len(after["history"]) == len(before["history"]) + 1
        assert after["history"][-1]["actor"] == f"user:{getattr(w, actor).id}"


async def test_a_shared_thread_is_readable_not_writable_by_colleagues(api: Api) -> None:
    await add_item(api.app.db, api.world.company_id, "deal", "A")
    thread = await api.mail_thread()
    assert (
        await api.owner.patch(f"/api/v1/threads/{thread['id']}", json={"visibility": "shared"})
    ).status_code == 200
    expected = {"read": 200, "read_raw": 200, "link": 403, "unlink": 403, "visibility": 403}
    for action, status in expected.items():
        assert await _act(api.colleague, action, thread["id"]) == status, action
    # The other company still sees nothing, shared or not (T1).
    assert await _act(api.outsider, "read", thread["id"]) == 404
    assert (await api.outsider.get("/api/v1/threads")).json()["threads"] == []
