"""Build the FastAPI application from its dependencies (no globals): `create_api(ApiContext(...))`."""

from __future__ import annotations

from fastapi import FastAPI

from bccd import __version__
from bccd.api import company, content, directory, login_links, ops, search, threads, tokens, users, webhooks
from bccd.api.context import ApiContext
from bccd.api.errors import install_error_handlers
from bccd.api.observe import RequestGuard
from bccd.web import install_web

DESCRIPTION = """\
The CRM's way into bccd, the Smart Bcc inbound mail server: sync the directory (persons, organizations,
deals, leads, projects) by the CRM's ids, read threads with their participants, links, link decision and
history, link and unlink by hand, search records, manage users.

Authenticate with `Authorization: Bearer <token>`. Errors are JSON: `{"error": "<code>", "detail": "…"}`.
"""


def create_api(ctx: ApiContext) -> FastAPI:
    api = FastAPI(
        title="bccd",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # bccd.web serves /docs with Swagger UI from the package, not a CDN
        redoc_url=None,
    )
    api.state.bccd = ctx
    install_error_handlers(api)
    for module in (ops, users, tokens, company, login_links, directory, threads, content, search, webhooks):
        api.include_router(module.router)
    webhooks.document_events(api)
    install_web(api)  # the sales inbox pages (issue 10), same app and port
    api.add_middleware(RequestGuard, metrics=ctx.metrics)
    return api
