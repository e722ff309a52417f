"""Issue 10 security headers: a CSP without inline scripts, no framing, nosniff, no referrer; offline docs."""

from __future__ import annotations

import re
from typing import Any

from tests.web.support import mail

Web = tuple[Any, Any, Any]


def _csp(headers: Any) -> dict[str, str]:
    return {
        d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else ""
        for d in (p.strip() for p in headers["content-security-policy"].split(";"))
        if d
    }


async def test_every_response_has_the_security_headers(web: Web) -> None:
    app, world, login = web
    await mail(app, world)
    owner = await login("owner")
    for url in ("/", "/threads/1", "/me", "/deals/A", "/login", "/static/app.css", "/api/v1/me", "/nowhere"):
        response = await owner.client.get(
            url, headers={"Authorization": "Bearer nope"} if "api" in url else {}
        )
        h = response.headers
        assert h["x-content-type-options"] == "nosniff", url
        assert h["referrer-policy"] == "no-referrer", url  # login links carry their secret in the path
        assert h["x-frame-options"] == "DENY", url
        csp = _csp(h)
        assert csp["script-src"] == "'self'", url  # no 'unsafe-inline', no 'unsafe-eval', no CDN
        assert (
            csp["frame-ancestors"] == "'none'" and csp["object-src" if "object-src" in csp else "default-src"]
        )
        assert csp["default-src"] == "'none'" and csp["img-src"] == "'self' data:", url


async def test_pages_hold_no_inline_script(web: Web) -> None:
    app, world, login = web
    await mail(app, world)
    owner = await login("owner")
    for url in ("/", "/threads/1", "/me", "/deals/A", "/docs", "/redoc"):
        html = await owner.page(url)
        scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
        assert scripts and all(body.strip() == "" for body in scripts), url  # every script is a src=
        assert not re.search(r"\son[a-z]+\s*=", html), url  # no inline event handlers
        assert "//cdn" not in html and "https://" not in re.sub(r'href="https://[^"]*"', "", html), url


async def test_api_docs_load_everything_from_us(web: Web) -> None:
    _, _, login = web
    anonymous = await login(None)
    docs = await anonymous.page("/docs")
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        response = await anonymous.client.get(asset)
        assert response.status_code == 200 and len(response.content) > 200, asset
    assert "SwaggerUIBundle" in (await anonymous.client.get("/static/api-docs/swagger-ui-bundle.js")).text
    redoc = await anonymous.page("/redoc")
    assert '<redoc spec-url="/openapi.json">' in redoc
    assert "'unsafe-inline'" in _csp((await anonymous.client.get("/docs")).headers)["style-src"]
    assert (await anonymous.client.get("/openapi.json")).json()["info"]["title"] == "bccd"


async def test_pages_are_not_cached_and_not_in_the_openapi_document(web: Web) -> None:
    _, _, login = web
    owner = await login("owner")
    assert (await owner.client.get("/me")).headers["cache-control"] == "no-store"
    paths = (await owner.client.get("/openapi.json")).json()["paths"]
    assert "/api/v1/users/{user_id}/login-link" in paths
    assert not [
        p for p in paths if not p.startswith("/api/") and p not in ("/healthz", "/readyz", "/metrics")
    ]
