"""SPEC M1, §3 privacy, T1 on the pages: the API's tenant/role matrix (tests/api/test_permissions.py), run
against the thread page and its forms. A refused action changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from bccd.services import threads as thread_service
from tests.api.test_permissions import MATRIX as API_MATRIX
from tests.web.support import Browser, csrf_of, mail

Web = tuple[Any, Any, Any]
ROLES = ("owner", "admin", "colleague", "outsider")
# Page actions and the API action whose row of the matrix they must follow.
ACTIONS = {"read": "read", "link": "link", "unlink": "unlink", "visibility": "visibility"}
# A page answers 200 (read) or 303 (a form post redirecting back) where the API answers 200.
OK = {"read": 200, "link": 303, "unlink": 303, "visibility": 303}


async def _act(browser: Browser, action: str, tid: int) -> int:
    if action == "read":
        return (await browser.client.get(f"/threads/{tid}")).status_code
    token = csrf_of(await browser.page("/"))  # the actor's own session token, from a page they may see
    form = {
        "link": ("link", {"type": "deal", "id": "B"}),
        "unlink": ("unlink", {}),
        "visibility": ("visibility", {"visibility": "shared"}),
    }[action]
    response = await browser.client.post(f"/threads/{tid}/{form[0]}", data={"csrf": token, **form[1]})
    return response.status_code


async def _linked_thread(web: Web) -> int:
    app, world, _ = web
    await mail(app, world, subject="Quote")
    [t] = await thread_service.list_visible(app.db, actor=world.owner, limit=5)
    return t.id


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("actor", ROLES)
async def test_page_permission_matrix(web: Web, action: str, actor: str) -> None:
    app, world, login = web
    tid = await _linked_thread(web)
    if action != "link":  # start from a linked thread so that unlink has something to remove
        admin = await login("admin")
        await admin.post(f"/threads/{tid}/link", {"type": "deal", "id": "A"}, from_page="/")
    before = (await thread_service.show_thread(app.db, tid, actor=None)).as_json()

    status = await _act(await login(actor), action, tid)

    api_status = API_MATRIX[ACTIONS[action]][actor]
    assert status == (OK[action] if api_status == 200 else api_status), (action, actor)
    after = (await thread_service.show_thread(app.db, tid, actor=None)).as_json()
    if status >= 400:
        assert after == before  # refused: not even the history moved
    elif action != "read":
        assert after["history"][-1]["actor"] == f"user:{getattr(world, actor).id}"


async def test_refusals_are_pages_not_json(web: Web) -> None:
    _app, _world, login = web
    tid = await _linked_thread(web)
    colleague, outsider = await login("colleague"), await login("outsider")
    forbidden = await colleague.client.get(f"/threads/{tid}")
    assert forbidden.status_code == 403 and forbidden.headers["content-type"].startswith("text/html")
    assert "Not allowed" in forbidden.text
    missing = await outsider.client.get(f"/threads/{tid}")
    assert missing.status_code == 404 and "Not found" in missing.text and "Quote" not in missing.text


async def test_shared_thread_is_readable_not_changeable_by_colleagues(web: Web) -> None:
    _app, _world, login = web
    tid = await _linked_thread(web)
    owner, colleague = await login("owner"), await login("colleague")
    assert (
        await owner.post(f"/threads/{tid}/visibility", {"visibility": "shared"}, from_page="/")
    ).status_code == 303
    page = await colleague.page(f"/threads/{tid}")
    assert "Quote" in page
    assert 'action="/threads/' not in page.split("<main", 1)[1]  # no link, unlink or share forms for them
    assert await _act(colleague, "link", tid) == 403
    assert await _act(await login("outsider"), "read", tid) == 404  # T1: shared inside the company only


async def test_listings_show_only_what_the_viewer_may_read(web: Web) -> None:
    """Inbox, company inbox and item pages follow §3: a private thread shows to its owner and admins only."""
    app, world, login = web
    await mail(app, world, subject="Private quote")
    owner = await login("owner")
    colleague = await login("colleague")
    admin = await login("admin")
    outsider = await login("outsider")
    assert "Private quote" in await owner.page("/")
    assert "Private quote" not in await admin.page("/")  # "my threads" by default, even for admins
    assert "Private quote" in await admin.page("/?scope=company")  # admins can switch to the company
    assert "Private quote" not in await colleague.page("/?scope=company")  # regulars cannot
    for browser in (owner, admin):
        assert "Private quote" in await browser.page("/persons/p1")
    assert "Private quote" not in await colleague.page("/persons/p1")
    assert (await outsider.client.get("/persons/p1")).status_code == 404  # another company's record


async def test_search_json_stays_in_the_company(web: Web) -> None:
    _, _, login = web
    owner, outsider = await login("owner"), await login("outsider")
    found = (await owner.client.get("/search.json?q=wind")).json()["results"]
    assert [h["name"] for h in found] == ["Wind farm"]
    assert (await outsider.client.get("/search.json?q=wind")).json() == {"results": []}
