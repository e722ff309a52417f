"""The inbox's search box is the thread search (the API's GET /api/v1/threads?q=): subject, text,
participants and attachment names, best match first; the filters and the pages keep working with it."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest

from bccd.web import pages_inbox
from tests.helpers import add_item, add_person, send
from tests.web.support import Browser, mail

Web = tuple[Any, Any, Any]
SUBJECT = re.compile(r'class="subject" href="/threads/\d+">([^<]*)</a>')


def subjects(html: str, heading: str = "list-h") -> list[str]:
    """The thread subjects listed under one heading of the inbox (`list-h` the main list)."""
    section = html.split(f'id="{heading}"', 1)[1].split("</section>", 1)[0]
    return SUBJECT.findall(section)


def _with_attachment(subject: str, filename: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@acme.test>"
    msg["To"] = "Someone <someone@nowhere.test>"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="acme.test")
    msg.set_content("See the file.\n")
    msg.add_attachment(b"%PDF-1.4\n", maintype="application", subtype="pdf", filename=filename)
    return bytes(msg)


async def _seed(web: Web) -> Browser:
    """Four threads of the owner: linked to deal C (Dave), ambiguous (Carol), unknown, with a PDF."""
    app, world, login = web
    await add_person(app.db, world.company_id, "p2", "Dave Hansen", ["dave@harbour.test"])
    await add_item(app.db, world.company_id, "deal", "C", person="p2", title="Harbour cranes")
    await mail(app, world, subject="Crane specs", to="Dave Hansen <dave@harbour.test>", body="turbine bolts")
    await mail(app, world, subject="Turbine quote", body="Hi Carol,\nthe turbine quote is attached.\n")
    await mail(app, world, subject="Lunch", to="Erin <erin@nowhere.test>", body="see you at noon")
    result = await send(app.smtp.port, [world.bcc], _with_attachment("Files", "Tilbud-vindmolle.pdf"))
    assert result.code == 250
    browser: Browser = await login("owner")
    return browser


async def test_search_finds_threads_by_subject_text_participant_and_attachment_name(web: Web) -> None:
    owner = await _seed(web)
    assert subjects(await owner.page("/?q=turbine")) == ["Turbine quote", "Crane specs"]  # subject first
    assert subjects(await owner.page("/?q=noon")) == ["Lunch"]  # the body text
    assert subjects(await owner.page("/?q=erin")) == ["Lunch"]  # a participant's name
    assert subjects(await owner.page("/?q=harbour.test")) == ["Crane specs"]  # an address
    assert subjects(await owner.page("/?q=vindmolle")) == ["Files"]  # an attachment's name
    page = await owner.page("/?q=nothing-like-it")
    assert subjects(page) == [] and "No thread you may see matches every word." in page


async def test_search_keeps_the_filters_and_the_filters_keep_the_search(web: Web) -> None:
    owner = await _seed(web)
    assert subjects(await owner.page("/?q=turbine&show=unlinked")) == ["Turbine quote"]
    assert subjects(await owner.page("/?q=turbine&show=linked")) == ["Crane specs"]
    assert subjects(await owner.page("/?q=turbine&person=p1")) == ["Turbine quote"]
    assert subjects(await owner.page("/?q=turbine&item=deal:C")) == ["Crane specs"]
    assert subjects(await owner.page("/?q=turbine&person=nobody")) == []  # not in the CRM: nothing

    page = await owner.page("/?q=turbine&person=p1")
    # The filter links keep the query, and the search form keeps the filter.
    assert 'href="/?person=p1&amp;q=turbine&amp;show=unlinked"' in page
    assert '<input type="hidden" name="person" value="p1">' in page
    assert "Clear the search" in page


async def test_search_does_not_show_other_peoples_private_threads(web: Web) -> None:
    _, _, login = web
    await _seed(web)
    colleague, admin = await login("colleague"), await login("admin")
    assert subjects(await colleague.page("/?q=turbine")) == []
    assert subjects(await colleague.page("/?q=turbine&scope=company")) == []  # regulars cannot switch
    assert subjects(await admin.page("/?q=turbine")) == []  # "mine" by default, even for admins
    assert subjects(await admin.page("/?q=turbine&scope=company")) == ["Turbine quote", "Crane specs"]
    outsider = await login("outsider")
    assert subjects(await outsider.page("/?q=turbine&scope=company")) == []  # T1


async def test_search_results_are_paged(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    app, world, login = web
    for n in range(5):
        await mail(app, world, subject=f"Offer {n}", to="Erin <erin@nowhere.test>", body="offer text")
    owner = await login("owner")
    monkeypatch.setattr(pages_inbox, "PAGE_SIZE", 2)
    seen: list[str] = []
    url: str | None = "/?q=offer"
    while url is not None:
        page = await owner.page(url)
        listed = subjects(page)
        assert 1 <= len(listed) <= 2
        seen += listed
        found = re.search(r'<a href="([^"]+)" rel="next">', page)
        url = found.group(1).replace("&amp;", "&") if found else None
        if url is not None:
            assert "q=offer" in url and "offset=" in url
    assert sorted(seen) == [f"Offer {n}" for n in range(5)]  # every match once, across three pages


async def test_search_lists_matching_records_as_shortcuts(web: Web) -> None:
    owner = await _seed(web)
    page = await owner.page("/?q=carol")
    assert 'id="hits-h">In the CRM' in page and "Carol Jensen" in page
    assert 'href="/?person=p1">Its threads' in page  # the shortcut drops the query, keeps the filter
    assert subjects(page) == ["Turbine quote"]


async def test_a_query_without_searchable_words_finds_nothing(web: Web) -> None:
    owner = await _seed(web)
    assert subjects(await owner.page("/?q=%21%21%21")) == []
    assert (await owner.client.get("/?q=" + "a" * 201)).status_code == 400
