"""SPEC M1, §3 privacy, T1 on the pages: the API's tenant/role matrix (tests/api/test_permissions.py) run
against every page and form, and each answer compared with what the API itself answers the same person.

Roles: the thread's owner, an admin of the company, a regular colleague, another company's admin, and
someone signed out. The pages translate the API's answers: 200 -> the page (or, for a form, 303 back to
the thread), 403 -> a "Not allowed" page, 404 -> a "Not found" page that names nothing, 401 -> 303 to the
sign-in page. A refused action changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx
import pytest

from bccd.api.app import create_api
from bccd.api.service import api_context
from bccd.services import links
from bccd.services import threads as thread_service
from bccd.store.users import create_token
from tests.api.support import Caller
from tests.api.test_permissions import MATRIX as API_MATRIX
from tests.helpers import send
from tests.web.support import Browser, csrf_of

Web = tuple[Any, Any, Any]
ROLES = ("owner", "admin", "colleague", "outsider", "signed_out")
# Each page action and the API's row of the matrix it follows.
API_ROW = {
    "read": "read",
    "attachment": "read_raw",  # the same read rule as the raw message (issue 9)
    "link": "link",
    "replace": "link",
    "unlink": "unlink",
    "share": "visibility",
}
FORMS: dict[str, tuple[str, dict[str, str]]] = {
    "link": ("link", {"type": "deal", "id": "A"}),
    "replace": ("link", {"type": "deal", "id": "B", "replace": "1"}),
    "unlink": ("unlink", {}),
    "share": ("visibility", {"visibility": "shared"}),
}
THREAD_LINK = re.compile(r'href="/threads/(\d+)"')


def _page_answer(api_status: int, action: str) -> int:
    """What a page answers where the API answers `api_status`."""
    if api_status == 200:
        return 200 if action in ("read", "attachment") else 303
    return 303 if api_status == 401 else api_status


def _offer(subject: str, sender: str = "Alice <alice@acme.test>") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "Carol Jensen <carol@client.test>"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="acme.test")
    msg.set_content("The offer is attached.\n")
    msg.add_attachment(b"%PDF-1.4\nsecret", maintype="application", subtype="pdf", filename="offer.pdf")
    return bytes(msg)


@pytest.fixture
async def api_callers(web: Web) -> AsyncIterator[dict[str, Caller]]:
    """The same people calling the API with a token each (signed_out: no token)."""
    app, world, _ = web
    async with app.db.write() as conn:
        tokens = {r: await create_token(conn, getattr(world, r).id) for r in ROLES if r != "signed_out"}
    transport = httpx.ASGITransport(app=create_api(api_context(app)))
    async with httpx.AsyncClient(transport=transport, base_url="http://bccd.test") as client:
        yield {r: Caller(client, tokens.get(r)) for r in ROLES}


async def _linked_offer(web: Web, subject: str) -> int:
    """A private thread of the owner with one attachment, linked to deal A."""
    app, world, _ = web
    assert (await send(app.smtp.port, [world.bcc], _offer(subject))).code == 250
    [found] = await thread_service.list_visible(app.db, actor=world.owner, limit=1)
    await links.link_item(app.db, found.id, "deal", "A", actor=world.admin)
    return found.id


async def _page_act(web: Web, role: str, action: str, tid: int) -> httpx.Response:
    _, _, login = web
    browser: Browser = await login(None if role == "signed_out" else role)
    if action == "read":
        return await browser.client.get(f"/threads/{tid}")
    if action == "attachment":
        return await browser.client.get(f"/threads/{tid}/attachments/0")
    token = "0" * 64 if role == "signed_out" else csrf_of(await browser.page("/"))
    path, fields = FORMS[action]
    return await browser.client.post(f"/threads/{tid}/{path}", data={"csrf": token, **fields})


async def _api_act(caller: Caller, action: str, tid: int) -> int:
    base = f"/api/v1/threads/{tid}"
    if action == "read":
        return (await caller.get(base)).status_code
    if action == "attachment":
        return (await caller.get(base + "/attachments/0")).status_code
    if action == "link":
        return (await caller.put(base + "/item", json={"type": "deal", "id": "A"})).status_code
    if action == "replace":
        return (await caller.put(base + "/item?replace=true", json={"type": "deal", "id": "B"})).status_code
    if action == "unlink":
        return (await caller.delete(base + "/item")).status_code
    return (await caller.patch(base, json={"visibility": "shared"})).status_code


@pytest.mark.parametrize("action", list(API_ROW))
@pytest.mark.parametrize("role", ROLES)
async def test_page_permission_matrix(
    web: Web, api_callers: dict[str, Caller], action: str, role: str
) -> None:
    app, world, _ = web
    tid, twin = await _linked_offer(web, "Quote"), await _linked_offer(web, "Quote twin")
    before = (await thread_service.show_thread(app.db, tid, actor=None)).as_json()

    response = await _page_act(web, role, action, tid)
    api_status = await _api_act(api_callers[role], action, twin)

    expected = 401 if role == "signed_out" else API_MATRIX[API_ROW[action]][role]
    assert api_status == expected, (action, role)  # the API's own matrix, as tests/api pins it
    assert response.status_code == _page_answer(api_status, action), (action, role)
    after = (await thread_service.show_thread(app.db, tid, actor=None)).as_json()
    if response.status_code == 303 and role == "signed_out":
        assert response.headers["location"] == "/login"
    elif response.status_code == 303:
        assert response.headers["location"].startswith(f"/threads/{tid}?done=")
    if response.status_code in (403, 404):
        assert response.headers["content-type"].startswith("text/html")
        assert "Quote" not in response.text and "secret" not in response.text
    if response.status_code >= 400 or role == "signed_out":
        assert after == before  # refused: not even the history moved
    elif action in ("link", "read", "attachment"):
        assert after["history"] == before["history"]  # reading, or linking to the same item
    else:
        assert after["history"][-1]["actor"] == f"user:{getattr(world, role).id}"


async def test_refusals_are_pages_not_json(web: Web) -> None:
    _app, _world, login = web
    tid = await _linked_offer(web, "Quote")
    colleague, outsider = await login("colleague"), await login("outsider")
    forbidden = await colleague.client.get(f"/threads/{tid}")
    assert forbidden.status_code == 403 and forbidden.headers["content-type"].startswith("text/html")
    assert "Not allowed" in forbidden.text
    missing = await outsider.client.get(f"/threads/{tid}")
    assert missing.status_code == 404 and "Not found" in missing.text and "Quote" not in missing.text


async def test_a_form_without_this_sessions_csrf_token_changes_nothing(web: Web) -> None:
    app, _world, login = web
    tid = await _linked_offer(web, "Quote")
    before = (await thread_service.show_thread(app.db, tid, actor=None)).as_json()
    owner = await login("owner")
    for path, fields in FORMS.values():
        for token in (None, "0" * 64):
            data = fields if token is None else {"csrf": token, **fields}
            response = await owner.client.post(f"/threads/{tid}/{path}", data=data)
            assert response.status_code == 403 and "Form expired" in response.text, (path, token)
    assert (await thread_service.show_thread(app.db, tid, actor=None)).as_json() == before


async def test_shared_thread_is_readable_not_changeable_by_colleagues(web: Web) -> None:
    _app, _world, login = web
    tid = await _linked_offer(web, "Quote")
    owner, colleague = await login("owner"), await login("colleague")
    assert (
        await owner.post(f"/threads/{tid}/visibility", {"visibility": "shared"}, from_page="/")
    ).status_code == 303
    page = await colleague.page(f"/threads/{tid}")
    assert "Quote" in page
    main = page.split("<main", 1)[1]
    assert 'method="post" action="/threads/' not in main  # no link, unlink or share forms for them
    assert f'href="/threads/{tid}/attachments/0"' in main  # but the attachment, which they may read
    assert (await colleague.client.get(f"/threads/{tid}/attachments/0")).status_code == 200
    for action in FORMS:
        assert (await _page_act((_app, _world, login), "colleague", action, tid)).status_code == 403
    assert (await _page_act((_app, _world, login), "outsider", "read", tid)).status_code == 404


# Listing pages and the API listing that must show the same threads to the same person.
LISTINGS = {
    "/": "/api/v1/threads?owner=me",
    "/?show=linked": "/api/v1/threads?owner=me",
    "/?q=quote": "/api/v1/threads?owner=me&q=quote",
    "/deals/A": "/api/v1/deals/A/threads",
    "/persons/p1": "/api/v1/persons/p1/threads",
    "/organizations/o1": "/api/v1/organizations/o1/threads",
}
COMPANY_LISTINGS = {
    "/?scope=company": "/api/v1/threads",
    "/?scope=company&q=quote": "/api/v1/threads?q=quote",
}


async def _three_threads(web: Web) -> dict[str, int]:
    """The owner's private and shared quotes and the colleague's private quote, all on deal A."""
    app, world, _ = web
    ids: dict[str, int] = {}
    for name in ("private", "shared"):
        ids[name] = await _linked_offer(web, f"Quote {name}")
    await links.change_visibility(app.db, ids["shared"], "shared", actor=world.owner)
    colleague_bcc = world.bcc.replace(world.owner.smart_bcc_local, world.colleague.smart_bcc_local)
    msg = _offer("Quote of the colleague", sender="Bob <bob@acme.test>")
    assert (await send(app.smtp.port, [colleague_bcc], msg)).code == 250
    [found] = await thread_service.list_visible(app.db, actor=world.colleague, owner_id=world.colleague.id)
    await links.link_item(app.db, found.id, "deal", "A", actor=world.admin)
    ids["colleague"] = found.id
    return ids


def _shown(html: str) -> set[int]:
    return {int(t) for t in THREAD_LINK.findall(html.split("<main", 1)[1])}


@pytest.mark.parametrize("role", ROLES)
async def test_listing_pages_show_what_the_api_lists(
    web: Web, api_callers: dict[str, Caller], role: str
) -> None:
    _, _, login = web
    ids = await _three_threads(web)
    browser = await login(None if role == "signed_out" else role)
    caller = api_callers[role]
    pairs = dict(LISTINGS)
    if role == "admin":
        pairs.update(COMPANY_LISTINGS)
    else:  # a regular user's "my company" is "mine": the switch is for admins only
        pairs.update({"/?scope=company": LISTINGS["/"], "/?scope=company&q=quote": LISTINGS["/?q=quote"]})
    for page_url, api_url in pairs.items():
        page, api = await browser.client.get(page_url), await caller.get(api_url)
        if role == "signed_out":
            assert api.status_code == 401, api_url
            assert page.status_code == 303 and page.headers["location"] == "/login", page_url
            continue
        assert page.status_code == api.status_code, (page_url, api_url)
        if api.status_code == 200:
            listed = {t["id"] for t in api.json()["threads"]}
            assert _shown(page.text) == listed, (role, page_url)
        else:
            assert "Quote" not in page.text
    if role == "admin":  # the matrix is not empty: the admin's company view has all three
        assert _shown((await browser.client.get("/?scope=company")).text) == set(ids.values())
    if role == "colleague":
        assert _shown((await browser.client.get("/deals/A")).text) == {ids["shared"], ids["colleague"]}


async def test_search_json_stays_in_the_company(web: Web) -> None:
    _, _, login = web
    owner, outsider = await login("owner"), await login("outsider")
    found = (await owner.client.get("/search.json?q=wind")).json()["results"]
    assert [h["name"] for h in found] == ["Wind farm"]
    assert (await outsider.client.get("/search.json?q=wind")).json() == {"results": []}
    signed_out = await (await login(None)).client.get("/search.json?q=wind")
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/login"
