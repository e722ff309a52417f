"""What the API needs from the running server, handed to `create_api` (no module globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from bccd.metrics import Metrics
from bccd.outbound import Mailer
from bccd.services.runtime import Database


def _always() -> bool:
    return True


@dataclass(frozen=True)
class ApiContext:
    db: Database
    metrics: Metrics
    bcc_domain: str  # the domain shown in Smart Bcc addresses (the first configured one)
    smtp_listening: Callable[[], bool] = _always  # readiness: is the SMTP socket serving?
    public_url: str | None = None  # [http] public_url: login links and web pages (issue 10)
    webhooks_allow_private: bool = False  # [webhooks] allow_private: the SSRF guard's exception
    mailer: Mailer | None = None  # [outbound]: alias confirmation codes (None: no relay, nothing is sent)


def get_context(request: Request) -> ApiContext:
    ctx = request.app.state.bccd
    assert isinstance(ctx, ApiContext)
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]
