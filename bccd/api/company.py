"""The caller's company and its settings: sender policy (S5), sender authentication, never-log (issue 9).

Every user of the company reads it; only its admins read the never-log list (it names people and
domains the company chose never to record) and change settings. There is no way to name another
company here (T1): the token's company is the one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bccd.api.auth import AdminUser, CurrentUser
from bccd.api.context import Ctx
from bccd.api.params import error_responses
from bccd.logs import get_logger
from bccd.services import companies as service
from bccd.services.companies import MAX_NEVER_LOG_ENTRIES
from bccd.vocabulary import SenderAuth, SenderPolicy

log = get_logger("bccd.api.company")

router = APIRouter(prefix="/api/v1", tags=["company"], responses=error_responses(401, 403, 422))

POLICY_DOC = (
    "who may send mail to the company's Smart Bcc addresses (S5): `owner` — only the address's user "
    "(login or alternative addresses); `company` — any user of the company; `any` — anyone"
)
AUTH_DOC = (
    "SPF/DKIM/DMARC of inbound mail: `off` — not checked; `record` — checked and kept with the thread; "
    "`require` — mail whose `From:` passes neither DMARC nor SPF/DKIM of the sender's domain is refused "
    "(550 5.7.x; a DNS failure answers 451)"
)
NEVER_LOG_DOC = (
    "addresses (`boss@acme.example`) and domains (`acme.example`, subdomains included) never stored as "
    "participants; normalized (lowercase, IDNA, a leading `@` dropped), sorted, duplicates merged"
)


class CompanyOut(BaseModel):
    id: int
    name: str
    sender_policy: SenderPolicy = Field(description=POLICY_DOC)
    sender_auth: SenderAuth = Field(description=AUTH_DOC)
    never_log: list[str] | None = Field(description=NEVER_LOG_DOC + "; admins only: null for other users")
    created_at: str | None = Field(description="ISO 8601, UTC")


class CompanyPatchIn(BaseModel):
    """Only the settings given change; `never_log` replaces the whole list (`[]` empties it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sender_policy: SenderPolicy | None = Field(default=None, description=POLICY_DOC)
    sender_auth: SenderAuth | None = Field(default=None, description=AUTH_DOC)
    never_log: list[str] | None = Field(
        default=None, max_length=MAX_NEVER_LOG_ENTRIES, description=NEVER_LOG_DOC
    )

    @field_validator("never_log")
    @classmethod
    def _never_log(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(service.clean_never_log(value))


@router.get(
    "/company",
    response_model=CompanyOut,
    summary="The caller's company and its settings (never_log: admins only)",
)
async def get_company(ctx: Ctx, user: CurrentUser) -> dict[str, Any]:
    company = await service.get_company(ctx.db, user.company_id)
    return company.as_json(never_log=user.is_admin)


@router.patch(
    "/company",
    response_model=CompanyOut,
    summary="Change the company's sender policy, sender authentication or never-log list (admin)",
)
async def patch_company(ctx: Ctx, admin: AdminUser, body: CompanyPatchIn) -> dict[str, Any]:
    company = await service.update_settings(
        ctx.db,
        admin.company_id,
        sender_policy=body.sender_policy,
        sender_auth=body.sender_auth,
        never_log=body.never_log,
    )
    changed = sorted(k for k in body.model_fields_set if getattr(body, k) is not None)
    # The field names only: never_log's entries name people and stay out of the logs.
    log.info("company_settings_changed", company=company.id, fields=changed, actor=f"user:{admin.id}")
    return company.as_json()
