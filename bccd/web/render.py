"""Jinja2 templates shipped in the package: one environment, autoescaped, rendered into no-store pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bccd import __version__
from bccd.web.session import CSRF_FIELD, Viewer

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"], default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _static(name: str) -> str:
    return f"/static/{name}?v={__version__}"


_env.globals.update(static=_static, csrf_field=CSRF_FIELD, version=__version__)


def page(
    request: Request,
    template: str,
    viewer: Viewer | None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    html = _env.get_template(template).render(request=request, viewer=viewer, **context)
    # Pages show private mail: never keep them in a shared cache or the browser's back-forward store.
    response = HTMLResponse(
        html, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )
    return response
