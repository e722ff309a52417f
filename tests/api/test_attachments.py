"""GET /api/v1/threads/{id}/attachments/{n} (issue 9): attachment n of message.attachments, streamed,
with its content type and a safe RFC 6266 Content-Disposition; inline images and message/rfc822 included."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import make_msgid
from typing import Any

import pytest

from bccd.api.content import content_disposition
from tests.api.support import Api, assert_error
from tests.helpers import make_mail, send

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x01\xfe\xff" * 500


def _mail_with_everything() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@acme.test>"
    msg["To"] = "Carol <carol@client.test>"
    msg["Subject"] = "Offer with files"
    msg["Message-ID"] = make_msgid(domain="acme.test")
    msg.set_content("See attached.\n")
    msg.add_alternative('<p>See attached.<img src="cid:logo"></p>', subtype="html")
    html = next(part for part in msg.walk() if part.get_content_type() == "text/html")
    assert isinstance(html, EmailMessage)
    html.add_related(PNG, maintype="image", subtype="png", cid="<logo>")  # an inline image
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="Tilbud æøå.pdf")
    msg.add_attachment("line one\nlinje to: blåbær\n", subtype="plain", filename="../../etc/notes\x07.txt")
    msg.add_attachment(make_mail(subject="The original", body="Original text.\n"), "message", "rfc822")
    return msg.as_bytes(policy=SMTP_POLICY)


async def _thread_of(api: Api, raw: bytes) -> dict[str, Any]:
    assert (await send(api.app.smtp.port, [api.world.bcc], raw)).code == 250
    page = (await api.owner.get("/api/v1/threads?owner=me&limit=1")).json()["threads"]
    response = await api.owner.get(f"/api/v1/threads/{page[0]['id']}")
    assert response.status_code == 200
    thread: dict[str, Any] = response.json()
    return thread


async def test_every_attachment_downloads_with_type_name_and_exact_bytes(api: Api) -> None:
    thread = await _thread_of(api, _mail_with_everything())
    attachments = thread["message"]["attachments"]
    assert [a["index"] for a in attachments] == list(range(len(attachments)))
    by_type = {a["content_type"]: a for a in attachments}
    assert set(by_type) == {"image/png", "application/pdf", "text/plain", "message/rfc822"}

    for meta in attachments:
        response = await api.owner.get(f"/api/v1/threads/{thread['id']}/attachments/{meta['index']}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].split(";")[0] == meta["content_type"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-disposition"].startswith("attachment; filename=")
        assert int(response.headers["content-length"]) == len(response.content)
        if meta["content_type"] != "message/rfc822":  # the parser hashed the enclosed mail regenerated
            assert hashlib.sha256(response.content).hexdigest() == meta["sha256"]
            assert len(response.content) == meta["size"]

    def get(content_type: str) -> Any:
        return api.owner.get(f"/api/v1/threads/{thread['id']}/attachments/{by_type[content_type]['index']}")

    pdf = await get("application/pdf")
    assert pdf.content == PDF
    assert pdf.headers["content-disposition"] == (
        "attachment; filename=\"Tilbud aeoa.pdf\"; filename*=UTF-8''Tilbud%20%C3%A6%C3%B8%C3%A5.pdf"
    )
    assert (await get("image/png")).content == PNG
    notes = await get("text/plain")
    assert notes.content.decode() == "line one\r\nlinje to: blåbær\r\n"  # as sent over SMTP
    assert "/" not in notes.headers["content-disposition"].replace("UTF-8''", "")
    assert "\x07" not in notes.headers["content-disposition"]
    original = await get("message/rfc822")
    assert b"Subject: The original" in original.content and b"Original text." in original.content


async def test_attachment_follows_the_threads_read_rule(api: Api) -> None:
    thread = await _thread_of(api, _mail_with_everything())
    url = f"/api/v1/threads/{thread['id']}/attachments/0"
    assert (await api.admin.get(url)).status_code == 200
    assert_error(await api.colleague.get(url), 403, "forbidden")
    assert_error(await api.outsider.get(url), 404, "not_found")
    assert_error(await api.anonymous.get(url), 401, "unauthorized")
    count = len(thread["message"]["attachments"])
    assert_error(await api.owner.get(f"/api/v1/threads/{thread['id']}/attachments/{count}"), 404, "not_found")
    assert_error(
        await api.owner.get(f"/api/v1/threads/{thread['id']}/attachments/-1"), 422, "validation_error"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        ("..\\..\\windows\\evil.exe", "attachment; filename=\"evil.exe\"; filename*=UTF-8''evil.exe"),
        (
            'a"b\r\nSet-Cookie: x.txt',
            "attachment; filename=\"a_bSet-Cookie_ x.txt\"; filename*=UTF-8''a%22bSet-Cookie%3A%20x.txt",
        ),
        (".htaccess", "attachment; filename=\"htaccess\"; filename*=UTF-8''htaccess"),
        ("数据.csv", "attachment; filename=\"__.csv\"; filename*=UTF-8''%E6%95%B0%E6%8D%AE.csv"),
        (None, "attachment; filename=\"attachment-3.pdf\"; filename*=UTF-8''attachment-3.pdf"),
        ("\u202egnp.exe", "attachment; filename=\"gnp.exe\"; filename*=UTF-8''gnp.exe"),
    ],
)
def test_content_disposition_is_safe(name: str | None, expected: str) -> None:
    assert content_disposition(name, 3, "application/pdf") == expected
