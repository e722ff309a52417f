"""/docs (Swagger UI 5) and /redoc (ReDoc 2) from the files the fastapi-offline package ships, so the API
docs work without internet (issue 10).

FastAPI's default pages load these from a CDN and start Swagger UI with an inline script, which our CSP
forbids; these pages load the same bundles from us and start Swagger UI from /static/docs.js. Licences:
Swagger UI Apache-2.0, ReDoc MIT, fastapi-offline MIT.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import fastapi_offline
from fastapi import Request, Response
from fastapi.responses import FileResponse

from bccd.web.render import page
from bccd.web.routing import web_router

router = web_router()

ASSET_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
}
ASSET_MAX_AGE = 24 * 3600
OPENAPI_URL = "/openapi.json"


@router.get("/docs")
async def docs(request: Request) -> Response:
    return page(request, "docs.html", None, openapi_url=OPENAPI_URL)


@router.get("/redoc")
async def redoc(request: Request) -> Response:
    return page(request, "redoc.html", None, openapi_url=OPENAPI_URL)


def _asset(name: str, media_type: str) -> Callable[[], Awaitable[Response]]:
    async def serve() -> Response:
        return FileResponse(
            ASSET_DIR / name,
            media_type=media_type,
            headers={"Cache-Control": f"public, max-age={ASSET_MAX_AGE}"},
        )

    return serve


for _name, _type in ASSETS.items():
    router.add_api_route(f"/static/api-docs/{_name}", _asset(_name, _type), methods=["GET"])
