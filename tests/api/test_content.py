"""GET /api/v1/threads/{id}/body (issue 9, "Message content"): the body JSON under the thread's read rule."""

from __future__ import annotations

from tests.api.support import Api, assert_error


async def test_body_gives_text_html_stripped_and_truncated(api: Api) -> None:
    thread = await api.mail_thread(
        subject="Offer",
        body="Here is the offer.\n\n-- \nAlice\n\nOn Mon, Bob wrote:\n> can you send it?\n",
    )
    response = await api.owner.get(f"/api/v1/threads/{thread['id']}/body")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"text", "html", "stripped_text", "truncated"}
    assert body["text"].startswith("Here is the offer.\n\n-- \nAlice")
    assert body["html"] is None
    assert body["stripped_text"] == "Here is the offer."
    assert body["truncated"] is False


async def test_body_follows_the_threads_read_rule(api: Api) -> None:
    """§3 privacy and T1, exactly as GET /threads/{id}: owner and admins read, a colleague gets 403 until
    the owner shares the thread, another company gets 404, no token 401."""
    thread = await api.mail_thread(subject="Private", body="secret numbers\n")
    url = f"/api/v1/threads/{thread['id']}/body"
    for role in ("owner", "admin"):
        assert (await api.as_(role).get(url)).json()["text"] == "secret numbers\n"
    for role, status, code in (("colleague", 403, "forbidden"), ("outsider", 404, "not_found")):
        assert_error(await api.as_(role).get(url), status, code)
        thread_status = (await api.as_(role).get(f"/api/v1/threads/{thread['id']}")).status_code
        assert thread_status == status  # the same answer as the thread itself
    assert_error(await api.anonymous.get(url), 401, "unauthorized")
    assert_error(await api.owner.get("/api/v1/threads/999999/body"), 404, "not_found")

    shared = await api.owner.patch(f"/api/v1/threads/{thread['id']}", json={"visibility": "shared"})
    assert shared.status_code == 200, shared.text
    assert (await api.colleague.get(url)).json()["text"] == "secret numbers\n"
    assert_error(await api.outsider.get(url), 404, "not_found")


async def test_forward_body_keeps_only_the_note(api: Api) -> None:
    thread = await api.mail_thread(
        subject="Fwd: Offer",
        body=(
            "Carol wants this by Friday.\n\n---------- Forwarded message ---------\n"
            "From: Carol <carol@client.test>\nDate: Mon, 1 Jan 2024 at 10:00\nSubject: Offer\n"
            "To: Alice <alice@acme.test>\n\nPlease send the offer.\n"
        ),
    )
    body = (await api.owner.get(f"/api/v1/threads/{thread['id']}/body")).json()
    assert body["stripped_text"] == "Carol wants this by Friday."
    assert "Please send the offer." in body["text"]


async def test_body_is_capped_with_the_flag(api: Api) -> None:
    """The store reads a prefix of a long body plus its length; the service flags the cut."""
    from bccd.services.content import thread_body

    thread = await api.mail_thread(subject="Long", body="x" * 5000 + "\n")
    capped = await thread_body(api.app.db, thread["id"], actor=api.world.owner, limit=1000)
    assert capped.truncated and capped.text == "x" * 1000
    full = (await api.owner.get(f"/api/v1/threads/{thread['id']}/body")).json()
    assert full["truncated"] is False and full["text"] == "x" * 5000 + "\n"


async def test_search_over_the_api_ranks_and_honours_visibility(api: Api) -> None:
    """Issue 9 "Search": GET /api/v1/threads?q= — subject, body, participants; a colleague's private
    thread is never found, an admin finds it; the cursor pages through the ranked results."""
    first = await api.mail_thread(subject="Kickoff agenda", body="We meet on Monday.\n")
    second = await api.mail_thread(subject="Notes", body="Agenda attached, see the kickoff notes.\n")
    await api.mail_thread(subject="Unrelated", body="Nothing here.\n")
    page = (await api.owner.get("/api/v1/threads", params={"q": "kickoff agenda"})).json()
    assert [t["id"] for t in page["threads"]] == [first["id"], second["id"]]  # subject match first
    assert (await api.owner.get("/api/v1/threads", params={"q": "carol@client.test"})).json()["threads"]
    assert (await api.colleague.get("/api/v1/threads", params={"q": "kickoff"})).json()["threads"] == []
    assert len((await api.admin.get("/api/v1/threads", params={"q": "kickoff"})).json()["threads"]) == 2
    assert (await api.outsider.get("/api/v1/threads", params={"q": "kickoff"})).json()["threads"] == []

    one = (await api.owner.get("/api/v1/threads", params={"q": "kickoff", "limit": 1})).json()
    assert [t["id"] for t in one["threads"]] == [first["id"]] and one["next_cursor"] is not None
    two = (
        await api.owner.get(
            "/api/v1/threads", params={"q": "kickoff", "limit": 1, "cursor": one["next_cursor"]}
        )
    ).json()
    assert [t["id"] for t in two["threads"]] == [second["id"]]
    assert_error(await api.owner.get("/api/v1/threads", params={"q": ""}), 422, "validation_error")
