"""Security headers on every response (issue 10): a CSP without inline scripts, no framing, no sniffing.

A route may send its own Content-Security-Policy (the thread page does, when the reader asked to load a
mail's remote images); everything else gets the strict default.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Swagger UI and ReDoc set styles from their scripts and ReDoc searches in a blob: worker; the scripts
# themselves are still only ours.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'") + "; worker-src blob:"
DOCS_PATHS = ("/docs", "/redoc")

FIXED = (
    (b"x-content-type-options", b"nosniff"),
    # Login links carry their secret in the path: never send a URL of ours to another site.
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


def with_remote_images(csp: str = CSP) -> str:
    """The policy for a page whose reader chose to load the mail's remote images (https only)."""
    return csp.replace("img-src 'self' data:", "img-src 'self' data: https:")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope.get("path") in DOCS_PATHS else CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in FIXED:
                    if name not in present:
                        headers.append((name, value))
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", csp.encode("ascii")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
