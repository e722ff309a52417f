"""Webhook endpoints of the caller's company (admins): register, list, change, remove, rotate the secret,
send a test event, read deliveries (issue 9). Use cases live in bccd.services.webhooks.

Every delivery is a POST of the event JSON (`WebhookEventOut`) signed per Standard Webhooks: headers
`webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>`; see docs/integration.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from bccd.api.auth import AdminUser
from bccd.api.context import Ctx
from bccd.api.errors import ApiError
from bccd.api.params import WebhookId, error_responses
from bccd.logs import get_logger
from bccd.services import webhooks as service
from bccd.services.webhooks import UnsafeEndpoint
from bccd.webhooks.events import EVENT_TYPES, TEST_EVENT, EventType

log = get_logger("bccd.api.webhooks")

router = APIRouter(
    prefix="/api/v1",
    tags=["webhooks"],
    responses=error_responses(
        401,
        s403="the caller is not an admin of the company",
        s404="no such webhook in the caller's company (T1)",
        s422="invalid URL or event type, or a refused (private) host",
    ),
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookCreateIn(_In):
    url: str = Field(min_length=1, max_length=2000, description="http(s) URL the events are POSTed to")
    events: list[EventType] = Field(
        default_factory=list, description="event types to receive; empty or missing: all of them"
    )
    description: str = Field(default="", max_length=500)


class WebhookPatchIn(_In):
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    events: list[EventType] | None = None
    enabled: bool | None = Field(default=None, description="true re-enables an endpoint disabled by a 410")
    description: str | None = Field(default=None, max_length=500)


class WebhookOut(BaseModel):
    id: int
    company: int
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None = Field(description="why bccd disabled it (a 410 Gone), if it did")
    created_at: str | None
    secret_rotated_at: str | None


class WebhookSecretOut(WebhookOut):
    secret: str = Field(description="whsec_<base64>: the signing secret, shown only in this response")


class WebhookTestOut(BaseModel):
    event: str = Field(description="the webhook-id the test delivery carries")
    type: str


class DeliveryOut(BaseModel):
    id: int
    event: str = Field(description="the event's id (the webhook-id header)")
    type: str
    thread: int | None
    status: str = Field(description="pending, delivered or failed (gave up, or the endpoint answered 410)")
    attempts: int
    next_attempt_at: str | None
    last_status: int | None = Field(description="HTTP status of the last attempt")
    last_error: str | None
    delivered_at: str | None
    created_at: str | None


class WebhookEventOut(BaseModel):
    """What each delivery POSTs (documentation of the payload; not an API response)."""

    id: str = Field(description="evt_…: unique per event, the same on every retry (dedupe by it)")
    type: str = Field(
        description="thread.created, thread.linked, thread.unlinked, thread.link_changed, "
        "thread.needs_attention, or webhook.test"
    )
    timestamp: str = Field(description="when the event happened (ISO 8601, UTC)")
    company: int
    data: dict[str, Any] = Field(
        description="the thread JSON as of the event (GET /api/v1/threads/{id}); manual changes add "
        '"change": {"action", "actor"}'
    )


def _refused(exc: ValueError) -> ApiError:
    code = "unsafe_url" if isinstance(exc, UnsafeEndpoint) else "validation_error"
    return ApiError(422, code, str(exc), field="url" if code == "unsafe_url" else "events")


@router.post(
    "/webhooks",
    response_model=WebhookSecretOut,
    status_code=201,
    summary="Register an endpoint (admin); the signing secret is shown once",
)
async def create_webhook(
    ctx: Ctx, admin: AdminUser, body: WebhookCreateIn, response: Response
) -> dict[str, Any]:
    try:
        endpoint, secret = await service.create_endpoint(
            ctx.db,
            actor=admin,
            url=body.url,
            events=body.events,
            description=body.description,
            allow_private=ctx.webhooks_allow_private,
        )
    except ValueError as exc:
        raise _refused(exc) from exc
    response.headers["Cache-Control"] = "no-store"
    log.info("webhook_created", webhook=endpoint.id, actor=f"user:{admin.id}")
    return {**endpoint.as_json(), "secret": secret}


@router.get("/webhooks", response_model=list[WebhookOut], summary="The company's endpoints (admin)")
async def list_webhooks(ctx: Ctx, admin: AdminUser) -> list[dict[str, Any]]:
    return [e.as_json() for e in await service.list_endpoints(ctx.db, actor=admin)]


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut, summary="One endpoint (admin)")
async def get_webhook(ctx: Ctx, admin: AdminUser, webhook_id: WebhookId) -> dict[str, Any]:
    return (await service.get_endpoint(ctx.db, webhook_id, actor=admin)).as_json()


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut, summary="Change url, events, enabled")
async def patch_webhook(
    ctx: Ctx, admin: AdminUser, webhook_id: WebhookId, body: WebhookPatchIn
) -> dict[str, Any]:
    try:
        endpoint = await service.update_endpoint(
            ctx.db,
            webhook_id,
            actor=admin,
            url=body.url,
            events=body.events,
            enabled=body.enabled,
            description=body.description,
            allow_private=ctx.webhooks_allow_private,
        )
    except ValueError as exc:
        raise _refused(exc) from exc
    log.info(
        "webhook_changed", webhook=webhook_id, fields=sorted(body.model_fields_set), actor=f"user:{admin.id}"
    )
    return endpoint.as_json()


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Remove an endpoint and its queue")
async def delete_webhook(ctx: Ctx, admin: AdminUser, webhook_id: WebhookId) -> Response:
    await service.delete_endpoint(ctx.db, webhook_id, actor=admin)
    log.info("webhook_removed", webhook=webhook_id, actor=f"user:{admin.id}")
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response_model=WebhookSecretOut,
    summary="New signing secret (shown once); the old one still signs for 24 h (two signatures)",
)
async def rotate_webhook_secret(
    ctx: Ctx, admin: AdminUser, webhook_id: WebhookId, response: Response
) -> dict[str, Any]:
    endpoint, secret = await service.rotate_secret(ctx.db, webhook_id, actor=admin)
    response.headers["Cache-Control"] = "no-store"
    log.info("webhook_secret_rotated", webhook=webhook_id, actor=f"user:{admin.id}")
    return {**endpoint.as_json(), "secret": secret}


@router.post(
    "/webhooks/{webhook_id}/test",
    response_model=WebhookTestOut,
    status_code=202,
    summary="Queue a webhook.test event for this endpoint",
)
async def test_webhook(ctx: Ctx, admin: AdminUser, webhook_id: WebhookId) -> dict[str, Any]:
    return await service.send_test(ctx.db, webhook_id, actor=admin)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=list[DeliveryOut],
    summary="Recent deliveries, newest first: status, attempts, last error",
)
async def webhook_deliveries(
    ctx: Ctx,
    admin: AdminUser,
    webhook_id: WebhookId,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    return await service.list_deliveries(ctx.db, webhook_id, actor=admin, limit=limit)


_EVENT_SUMMARIES = {
    "thread.created": "A thread was created for an accepted message (data.decision: the automatic decision)",
    "thread.linked": "The thread is now linked to an item (automatically at creation, or by hand)",
    "thread.unlinked": "The thread's item link was removed by hand",
    "thread.link_changed": "A manual link change (item, person, organization); data.change has the actor",
    "thread.needs_attention": "The automatic decision left the thread unlinked: ambiguous, "
    "target_not_found or items_newer_than_thread",
    TEST_EVENT: "Sent by POST /api/v1/webhooks/{id}/test",
}


def document_events(api: FastAPI) -> None:
    """List every event in the OpenAPI document's `webhooks` section (what bccd POSTs to endpoints)."""
    for type_ in (*EVENT_TYPES, TEST_EVENT):

        async def event(
            body: WebhookEventOut,
            webhook_id: Annotated[str, Header(description="the event id; the same on every retry")],
            webhook_timestamp: Annotated[str, Header(description="Unix seconds of this attempt")],
            webhook_signature: Annotated[
                str, Header(description="v1,<base64 HMAC-SHA256(key, id.timestamp.body)>, space-separated")
            ],
        ) -> None:
            """Answer 2xx within 10 s; anything else is retried with backoff for 26 h. 410 disables."""

        api.webhooks.post(type_, summary=_EVENT_SUMMARIES[type_], operation_id=f"event_{type_}")(event)
