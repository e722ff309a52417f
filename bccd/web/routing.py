"""The pages' router: domain errors and bad input become HTML pages, not the API's JSON errors."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from bccd.errors import NotFound, PermissionDenied
from bccd.services.content import AttachmentUnreadable
from bccd.web.render import page
from bccd.web.session import CsrfRejected, SignInRequired, optional_viewer


class BadForm(ValueError):
    """A posted form without the fields the action needs (only a hand-made request gets here)."""


ERROR_PAGES: dict[type[Exception], tuple[int, str, str]] = {
    NotFound: (404, "Not found", "There is nothing here, or it belongs to another company."),
    PermissionDenied: (403, "Not allowed", "Only the thread's owner or an admin may see or change this."),
    CsrfRejected: (
        403,
        "Form expired",
        "This form was not sent from a bccd page of your current session. Reload the page and try again.",
    ),
    AttachmentUnreadable: (
        422,
        "Attachment unreadable",
        "bccd cannot find this attachment in the stored mail, which is large and malformed. "
        "The whole message is still kept as it was received.",
    ),
    BadForm: (400, "Bad request", "The form was missing something bccd needs. Go back and try again."),
    RequestValidationError: (400, "Bad request", "The address or form held a value bccd cannot use."),
}


async def error_page(request: Request, exc: Exception) -> Response:
    status, title, text = next(v for k, v in ERROR_PAGES.items() if isinstance(exc, k))
    viewer = None
    try:
        ctx = request.app.state.bccd
        viewer = await optional_viewer(request, ctx)
    except Exception:  # the error page must render even when the session lookup fails
        viewer = None
    return page(request, "error.html", viewer, status=status, title=title, text=text)


class WebRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return RedirectResponse("/login", status_code=303)
            except (
                NotFound,
                PermissionDenied,
                CsrfRejected,
                AttachmentUnreadable,
                BadForm,
                RequestValidationError,
            ) as exc:
                return await error_page(request, exc)

        return guarded


def web_router(**kwargs: Any) -> APIRouter:
    # Pages are not part of the API contract: keep them out of the OpenAPI document.
    return APIRouter(route_class=WebRoute, include_in_schema=False, **kwargs)


def see_other(url: str) -> RedirectResponse:
    """Post/redirect/get: a reload after a form post never sends it twice."""
    return RedirectResponse(url, status_code=303)
