"""/docs: Swagger UI from the installed swagger-ui-bundle package (Apache-2.0), so it works offline.

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script, which our CSP
forbids; this page loads the same bundle from us and starts it from /static/docs.js.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request, Response
from fastapi.responses import FileResponse
from swagger_ui_bundle import swagger_ui_path

from bccd.web.render import page
from bccd.web.routing import web_router

router = web_router()

SWAGGER_DIR = Path(str(swagger_ui_path))
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
ASSET_MAX_AGE = 24 * 3600


@router.get("/docs")
async def docs(request: Request) -> Response:
    return page(request, "docs.html", None, openapi_url="/openapi.json")


def _asset(name: str, media_type: str) -> object:
    async def serve() -> Response:
        return FileResponse(
            SWAGGER_DIR / name,
            media_type=media_type,
            headers={"Cache-Control": f"public, max-age={ASSET_MAX_AGE}"},
        )

    return serve


for _name, _type in ASSETS.items():
    router.add_api_route(f"/static/swagger/{_name}", _asset(_name, _type), methods=["GET"])  # type: ignore[arg-type]
