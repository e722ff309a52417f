"""The sales inbox: server-rendered pages on the API's app and port (issue 10). Pages call bccd.services."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from bccd.web import (
    docs,
    pages_auth,
    pages_files,
    pages_inbox,
    pages_me,
    pages_records,
    pages_thread,
    search_json,
)
from bccd.web.headers import SecurityHeaders
from bccd.web.render import STATIC_DIR


def install_web(app: FastAPI) -> None:
    """Add the pages, their static files, local API docs and the security headers to the API's app."""
    pages = (pages_auth, pages_inbox, pages_thread, pages_files, pages_records, pages_me, search_json)
    for module in (docs, *pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)
