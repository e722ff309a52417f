"""Issue 10 sign-in: one-time login links (15 min, single use, hashed), session cookies, sign-out, CSRF."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from bccd.api.app import create_api
from bccd.api.service import api_context
from bccd.services import web_auth
from bccd.store.schema import login_links, web_sessions
from bccd.store.users import create_token
from tests.web.support import NONCE_INPUT, csrf_of

Web = tuple[Any, Any, Any]


async def _open_link(client: httpx.AsyncClient, url: str) -> httpx.Response:
    landing = await client.get(url)
    nonce = NONCE_INPUT.search(landing.text)
    assert nonce, landing.text
    return await client.post(url, data={"nonce": nonce.group(1)})


async def test_a_login_link_signs_in_once_and_is_stored_hashed(web: Web) -> None:
    app, world, login = web
    link = await web_auth.issue_login_link(app.db, world.owner.id, actor=None, public_url="http://bccd.test")
    raw = link.url.rsplit("/", 1)[1]
    assert link.expires_at - datetime.now(UTC) <= timedelta(minutes=15)
    async with app.db.read() as conn:
        stored = [r[0] for r in await conn.execute(select(login_links.c.token_hash))]
    assert stored == [hashlib.sha256(raw.encode()).hexdigest()]  # T2: never the secret itself

    browser = await login(None)
    assert (
        await browser.client.get(link.url)
    ).status_code == 200  # opening it (a mail scanner) spends nothing
    done = await _open_link(browser.client, link.url)
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert "My inbox" in await browser.page("/")

    again = await _open_link((await login(None)).client, link.url)
    assert again.status_code == 400 and "used already" in again.text


async def test_a_login_link_expires_after_15_minutes(web: Web) -> None:
    app, world, login = web
    issued = datetime.now(UTC) - timedelta(minutes=15, seconds=1)
    link = await web_auth.issue_login_link(
        app.db, world.owner.id, actor=None, public_url="http://bccd.test", clock=lambda: issued
    )
    response = await _open_link((await login(None)).client, link.url)
    assert response.status_code == 400
    fresh = await web_auth.issue_login_link(app.db, world.owner.id, actor=None, public_url="http://bccd.test")
    assert (await _open_link((await login(None)).client, fresh.url)).status_code == 303


async def test_the_sign_in_form_needs_the_page_it_came_from(web: Web) -> None:
    """Login CSRF: another site cannot post a link of the attacker's into the victim's browser."""
    app, world, login = web
    link = await web_auth.issue_login_link(app.db, world.owner.id, actor=None, public_url="http://bccd.test")
    browser = await login(None)
    forged = await browser.client.post(link.url, data={"nonce": "guessed"})
    assert forged.status_code == 400
    assert (await _open_link(browser.client, link.url)).status_code == 303  # the link was not spent


async def test_session_cookie_flags(web: Web) -> None:
    app, world, login = web
    link = await web_auth.issue_login_link(app.db, world.owner.id, actor=None, public_url="http://bccd.test")
    response = await _open_link((await login(None)).client, link.url)
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "bccd_session=" in v)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would never come back
    async with app.db.read() as conn:
        [stored] = [r[0] for r in await conn.execute(select(web_sessions.c.session_hash))]
    raw = re.search(r"bccd_session=([^;]+)", cookie)
    assert raw and stored == hashlib.sha256(raw.group(1).encode()).hexdigest()


async def test_session_cookie_is_secure_behind_tls(web: Web) -> None:
    app, world, _ = web
    ctx = api_context(app)
    api = create_api(type(ctx)(**{**ctx.__dict__, "public_url": "https://bccd.example"}))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url="https://bccd.example"
    ) as c:
        link = await web_auth.issue_login_link(
            app.db, world.owner.id, actor=None, public_url="https://bccd.example"
        )
        response = await _open_link(c, link.url)
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "bccd_session=" in v)
    assert "Secure" in cookie


async def test_sign_out_ends_the_session_for_good(web: Web) -> None:
    _app, _world, login = web
    browser = await login("owner")
    stolen = dict(browser.client.cookies)
    response = await browser.post("/logout", from_page="/")
    assert response.status_code == 303 and response.headers["location"] == "/login?signed_out=1"
    replay = await login(None)
    replay.client.cookies.update(stolen)
    assert (await replay.client.get("/")).headers["location"] == "/login"  # the old cookie is worthless


async def test_sign_out_everywhere_else(web: Web) -> None:
    _app, _world, login = web
    laptop, phone = await login("owner"), await login("owner")
    assert "signed in in 2 browsers" in await laptop.page("/me")
    response = await laptop.post("/me/sessions/close-others", from_page="/me")
    assert response.status_code == 303
    assert (await phone.client.get("/")).status_code == 303  # sent to sign in
    assert "signed in in 1 browser." in await laptop.page("/me")


async def test_pages_need_a_session(web: Web) -> None:
    _, _, login = web
    anonymous = await login(None)
    for url in ("/", "/me", "/threads/1", "/deals/A", "/search.json?q=a"):
        response = await anonymous.client.get(url)
        assert response.status_code == 303 and response.headers["location"] == "/login", url
    assert "one-time link" in await anonymous.page("/login")


async def test_every_state_changing_form_needs_the_csrf_token(web: Web) -> None:
    _app, _world, login = web
    owner, colleague = await login("owner"), await login("colleague")
    other_token = csrf_of(await colleague.page("/me"))
    posts = {
        "/threads/1/link": {"type": "deal", "id": "A"},
        "/threads/1/unlink": {},
        "/threads/1/visibility": {"visibility": "shared"},
        "/me/rotate-address": {"confirm": "yes"},
        "/me/autolink": {"autolink": "off"},
        "/me/tokens": {},
        "/me/sessions/close-others": {},
        "/logout": {},
    }
    before = await owner.page("/me")
    for url, data in posts.items():
        for token in (None, other_token, "0" * 64):
            form = data if token is None else {**data, "csrf": token}
            response = await owner.client.post(url, data=form)
            assert response.status_code == 403 and "Form expired" in response.text, (url, token)
    assert (await owner.page("/me")) == before  # nothing changed: same address, autolink, sessions


async def test_login_link_api(web: Web) -> None:
    """POST /api/v1/users/{id}/login-link: the user themself or an admin of the company (T1: 404 outside)."""
    app, world, login = web
    api = create_api(api_context(app))
    tokens = {}
    async with app.db.write() as conn:
        for role in ("owner", "colleague", "admin", "outsider"):
            tokens[role] = await create_token(conn, getattr(world, role).id)
    expected = {"owner": 201, "admin": 201, "colleague": 403, "outsider": 404}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://crm.test") as c:
        for role, status in expected.items():
            response = await c.post(
                f"/api/v1/users/{world.owner.id}/login-link",
                headers={"Authorization": f"Bearer {tokens[role]}"},
            )
            assert response.status_code == status, (role, response.text)
            if status == 201:
                body = response.json()
                assert body["user"] == world.owner.id and body["url"].startswith(
                    "http://crm.test/login/bccdl_"
                )
                assert response.headers["cache-control"] == "no-store"
        anonymous = await c.post(f"/api/v1/users/{world.owner.id}/login-link")
        assert anonymous.status_code == 401
    browser = await login(None)
    assert (await _open_link(browser.client, body["url"].replace("http://crm.test", ""))).status_code == 303


def test_cli_login_link_uses_public_url(tmp_path: Any) -> None:
    """`bccd user login-link U --json` builds the link on [http] public_url."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    env = {
        "BCCD_DATABASE__URL": url,
        "BCCD_HTTP__PUBLIC_URL": "https://bccd.example.com/",
        "PATH": "/usr/bin:/bin",
    }
    cli = [sys.executable, "-m", "bccd.cli"]

    def run(*args: str) -> Any:
        done = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("db", "upgrade")
    run("company", "create", "--name", "Acme")
    run("user", "create", "--company", "Acme", "--email", "alice@acme.test", "--name", "Alice", "--no-token")
    data = json.loads(run("user", "login-link", "alice@acme.test", "--json"))
    assert re.fullmatch(r"https://bccd\.example\.com/login/bccdl_[A-Za-z0-9_-]{40,}", data["url"]), data
    assert data["user"] == 1 and datetime.fromisoformat(data["expires_at"]) > datetime.now(UTC)
    text = run("user", "login-link", "1")
    assert text.startswith("https://bccd.example.com/login/bccdl_") and "works once" in text
