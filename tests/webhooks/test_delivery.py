"""Issue 9 webhooks, delivery: outbox in the thread's transaction, signature, retries, order, 410, dedupe.

Every test runs a real bccd app (SMTP on loopback) and a real HTTP receiver on loopback.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from bccd.services import links, webhooks
from bccd.store.schema import webhook_deliveries, webhook_events
from tests.helpers import add_item, add_person, make_mail, send
from tests.webhooks.conftest import Hooked, settled
from tests.webhooks.receiver import Received, Receiver, verify


async def _mail(h: Hooked, subject: str = "Proposal") -> None:
    result = await send(h.port, [h.world.bcc], make_mail(subject=subject))
    assert result.code == 250


def _types(requests: list[Received]) -> list[str]:
    return [r.json["type"] for r in requests]


async def test_accepted_message_is_posted_signed_with_the_thread_json(hooked: Hooked) -> None:
    await _mail(hooked)
    await hooked.receiver.wait_for(lambda r: len(r.delivered()) >= 1)
    [created] = hooked.receiver.delivered()  # no_matching_person: nothing a person can fix
    assert created.json["type"] == "thread.created"
    assert verify(hooked.secret, created)
    assert not verify("whsec_" + "A" * 44, created)  # the check can fail
    payload = created.json
    assert set(payload) == {"id", "type", "timestamp", "company", "data"}
    assert payload["id"] == created.webhook_id and payload["id"].startswith("evt_")
    assert payload["company"] == hooked.world.company_id
    assert payload["data"]["subject"] == "Proposal"
    assert payload["data"]["decision"]["reason"] == "no_matching_person"
    assert created.headers["content-type"] == "application/json"
    assert abs(int(created.headers["webhook-timestamp"]) - time.time()) < 60


async def test_needs_attention_for_ambiguous_and_linked_for_an_automatic_link(hooked: Hooked) -> None:
    db, cid = hooked.app.db, hooked.world.company_id
    await add_person(db, cid, "p1", "Carol", ["carol@client.test"])
    await add_item(db, cid, "deal", "d1", person="p1")
    await _mail(hooked, "one deal")
    await hooked.receiver.wait_for(lambda r: len(r.delivered()) >= 2)
    assert sorted(_types(hooked.receiver.delivered())) == ["thread.created", "thread.linked"]
    await add_item(db, cid, "deal", "d2", person="p1")
    await _mail(hooked, "two deals")
    await hooked.receiver.wait_for(lambda r: len(r.delivered()) >= 4)
    later = [r.json for r in hooked.receiver.delivered()[2:]]
    attention = next(p for p in later if p["type"] == "thread.needs_attention")
    assert attention["data"]["decision"]["reason"] == "ambiguous"
    assert {c["id"] for c in attention["data"]["decision"]["candidates"]} == {"d1", "d2"}


async def test_manual_link_changes_carry_the_actor_and_arrive_in_order(hooked: Hooked) -> None:
    db, cid, owner = hooked.app.db, hooked.world.company_id, hooked.world.owner
    await add_item(db, cid, "deal", "d1")
    # Every first attempt fails: the retries must still deliver one thread's events in event order.
    seen: set[str] = set()

    def plan(request: Received) -> int:
        wid = request.webhook_id
        if wid in seen:
            return 200
        seen.add(wid)
        return 500

    hooked.receiver.plan = plan
    await _mail(hooked)
    async with db.read() as conn:
        tid = int((await conn.execute(select(func.max(webhook_events.c.thread_id)))).scalar_one())
    await links.link_item(db, tid, "deal", "d1", actor=owner)
    await links.unlink_item(db, tid, actor=owner)
    expected = [
        "thread.created",
        "thread.linked",
        "thread.link_changed",
        "thread.unlinked",
        "thread.link_changed",
    ]
    await hooked.receiver.wait_for(lambda r: len(r.delivered()) >= len(expected))
    delivered = hooked.receiver.delivered()
    assert _types(delivered) == expected
    # Event ids grow in commit order (evt_ ids are random, so compare the recorded event order).
    async with db.read() as conn:
        order = [
            uid for (uid,) in await conn.execute(select(webhook_events.c.uid).order_by(webhook_events.c.id))
        ]
    assert [r.webhook_id for r in delivered] == order
    changes = [r.json["data"]["change"] for r in delivered if r.json["type"] == "thread.link_changed"]
    assert changes == [
        {"action": "link_item", "actor": f"user:{owner.id}"},
        {"action": "unlink_item", "actor": f"user:{owner.id}"},
    ]
    linked = next(r.json for r in delivered if r.json["type"] == "thread.linked")
    assert linked["data"]["item"] == {"type": "deal", "id": "d1"}  # the thread as of the event
    # each event failed once (500) before it was delivered
    assert len(hooked.receiver.all()) == 2 * len(expected)


async def test_retries_after_500s_with_the_same_id_and_body_so_receivers_can_dedupe(hooked: Hooked) -> None:
    answers = iter([500, 500, 503])
    hooked.receiver.plan = lambda request: next(answers, 200)
    await webhooks.send_test(hooked.app.db, hooked.endpoint_id, actor=hooked.world.admin)
    await hooked.receiver.wait_for(lambda r: len(r.delivered()) == 1)
    attempts = hooked.receiver.all()
    assert [a.status for a in attempts] == [500, 500, 503, 200]
    assert len({a.webhook_id for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1
    processed = {a.webhook_id: a.json for a in attempts}  # a receiver deduping by webhook-id
    assert len(processed) == 1
    [delivery] = await settled(hooked.app.db, hooked.endpoint_id)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 4
    assert delivery["last_status"] == 200 and delivery["type"] == "webhook.test"


async def test_failed_attempt_records_the_error(hooked: Hooked) -> None:
    hooked.receiver.plan = lambda request: 500
    await webhooks.send_test(hooked.app.db, hooked.endpoint_id, actor=hooked.world.admin)
    await hooked.receiver.wait_for(lambda r: len(r.all()) >= 2)
    [delivery] = await webhooks.list_deliveries(hooked.app.db, hooked.endpoint_id, actor=None)
    assert delivery["status"] == "pending" and delivery["last_error"] == "HTTP 500"
    assert delivery["attempts"] >= 2


async def test_410_disables_the_endpoint(hooked: Hooked) -> None:
    hooked.receiver.plan = lambda request: 410
    await webhooks.send_test(hooked.app.db, hooked.endpoint_id, actor=hooked.world.admin)
    await hooked.receiver.wait_for(lambda r: len(r.all()) == 1)
    for _ in range(100):
        endpoint = await webhooks.get_endpoint(hooked.app.db, hooked.endpoint_id, actor=None)
        if not endpoint.enabled:
            break
        await asyncio.sleep(0.02)
    assert not endpoint.enabled and endpoint.disabled_reason == "410 Gone from the endpoint"
    [delivery] = await settled(hooked.app.db, hooked.endpoint_id)
    assert delivery["status"] == "failed"
    # A disabled endpoint gets no events (none are even written for it).
    await _mail(hooked)
    async with hooked.app.db.read() as conn:
        count = (await conn.execute(select(func.count()).select_from(webhook_deliveries))).scalar_one()
    assert count == 1
    await asyncio.sleep(0.2)
    assert len(hooked.receiver.all()) == 1


async def test_rotation_signs_with_both_secrets(hooked: Hooked) -> None:
    _, new = await webhooks.rotate_secret(hooked.app.db, hooked.endpoint_id, actor=hooked.world.admin)
    await webhooks.send_test(hooked.app.db, hooked.endpoint_id, actor=hooked.world.admin)
    await hooked.receiver.wait_for(lambda r: len(r.delivered()) == 1)
    [request] = hooked.receiver.delivered()
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify(new, request) and verify(hooked.secret, request)


async def test_no_endpoint_no_events(api_db_url: str, receiver: Receiver) -> None:
    """The outbox writes nothing for a company without an enabled endpoint (the documented choice)."""
    from bccd.app import BccdApp
    from tests.helpers import seed_world
    from tests.webhooks.conftest import hook_settings

    app = BccdApp(hook_settings(api_db_url))
    await app.start()
    try:
        world = await seed_world(app.db)
        assert (await send(app.smtp.port, [world.bcc], make_mail())).code == 250
        async with app.db.read() as conn:
            assert (await conn.execute(select(func.count()).select_from(webhook_events))).scalar_one() == 0
    finally:
        await app.stop()


def _doc_receiver(secret: str) -> dict[str, object]:
    """The copy-paste receiver of docs/webhooks.md, without its last line (serve_forever)."""
    import os
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    [code] = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    code = code.replace('HTTPServer(("0.0.0.0", 8000), Hook).serve_forever()', "")
    os.environ["BCCD_WEBHOOK_SECRET"] = secret
    try:
        namespace: dict[str, object] = {}
        exec(compile(code, "docs/webhooks.md", "exec"), namespace)  # noqa: S102 (our own docs)
    finally:
        del os.environ["BCCD_WEBHOOK_SECRET"]
    return namespace


async def test_the_documented_receiver_verifies_real_deliveries(hooked: Hooked) -> None:
    await webhooks.send_test(hooked.app.db, hooked.endpoint_id, actor=hooked.world.admin)
    await hooked.receiver.wait_for(lambda r: len(r.delivered()) == 1)
    [request] = hooked.receiver.delivered()
    verified = _doc_receiver(hooked.secret)["verified"]
    assert callable(verified)
    assert verified(request.headers, request.body) is True
    assert verified(request.headers, request.body + b" ") is False  # a changed body fails
    other = _doc_receiver("whsec_" + "B" * 43 + "=")["verified"]
    assert callable(other) and other(request.headers, request.body) is False


async def test_gives_up_when_the_event_is_older_than_retry_for(api_db_url: str, receiver: Receiver) -> None:
    from bccd.app import BccdApp
    from tests.helpers import seed_world
    from tests.webhooks.conftest import hook_settings

    receiver.plan = lambda request: 500
    app = BccdApp(hook_settings(api_db_url, retry_for=0.3))
    await app.start()
    try:
        world = await seed_world(app.db)
        endpoint, _ = await webhooks.create_endpoint(
            app.db, actor=world.admin, url=receiver.url, allow_private=True
        )
        await webhooks.send_test(app.db, endpoint.id, actor=world.admin)
        await receiver.wait_for(lambda r: len(r.all()) >= 2)
        [delivery] = await settled(app.db, endpoint.id)
        assert delivery["status"] == "failed" and delivery["last_error"] == "HTTP 500"
        tries = len(receiver.all())
        await asyncio.sleep(0.3)
        assert len(receiver.all()) == tries  # no more attempts
        assert 'bccd_webhook_deliveries_total{result="given_up"} 1.0' in app.metrics.render().decode()
    finally:
        await app.stop()
