"""Semantic HTML on every page (issue 10, "accessible"): a language, one h1, a main landmark, no skipped
heading levels, unique ids, a label for every form control, a name for every button, link and image."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import pairwise
from typing import Any

from bccd.services import links
from bccd.services import threads as thread_service
from tests.web.support import Browser, csrf_of, mail

Web = tuple[Any, Any, Any]
LABELLED_BY_ATTRIBUTE = ("aria-label", "aria-labelledby", "title")
VOID = {"input", "img", "br", "hr", "meta", "link", "source", "wbr", "col", "area", "base", "embed"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)
    labels: list[Element] = field(default_factory=list)  # the <label>s it sits in


class Page(HTMLParser):
    """Collects what the checks need; the pages are our own templates, so a simple parser suffices."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[Element] = []
        self.elements: list[Element] = []
        self.lang: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        element.labels = [e for e in self.stack if e.tag == "label"]
        if tag == "html":
            self.lang = element.attrs.get("lang")
        self.elements.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for open_element in self.stack:
            open_element.text.append(data)

    def all(self, *tags: str) -> list[Element]:
        return [e for e in self.elements if e.tag in tags]


def _name(e: Element) -> str:
    return "".join(e.text).strip() or next((e.attrs[a] for a in LABELLED_BY_ATTRIBUTE if e.attrs.get(a)), "")


def check_page(html: str, url: str) -> None:
    page = Page(html)
    assert page.lang == "en", url
    assert len(page.all("h1")) == 1, url
    assert len(page.all("main")) == 1, url
    levels = [int(e.tag[1]) for e in page.all("h1", "h2", "h3", "h4", "h5", "h6")]
    for before, after in pairwise(levels):
        assert after <= before + 1, (url, "heading level skipped", levels)
    ids = [e.attrs["id"] for e in page.elements if "id" in e.attrs]
    assert len(ids) == len(set(ids)), (url, sorted(i for i in ids if ids.count(i) > 1))
    label_for = {e.attrs.get("for") for e in page.all("label")}
    for control in page.all("input", "select", "textarea"):
        if control.attrs.get("type") == "hidden":
            continue
        labelled = (
            control.attrs.get("id") in label_for
            or control.labels
            or any(control.attrs.get(a) for a in LABELLED_BY_ATTRIBUTE)
        )
        assert labelled, (url, "a form control without a label", control.attrs)
    for element in page.all("button", "a"):
        assert _name(element), (url, f"a {element.tag} without a name", element.attrs)
    for image in page.all("img"):
        assert "alt" in image.attrs, (url, "an image without alt", image.attrs)
    for element in page.all("nav", "section"):
        named = element.attrs.get("aria-label") or element.attrs.get("aria-labelledby")
        assert named, (url, f"an unnamed {element.tag} landmark", element.attrs)


async def test_every_page_is_labelled_and_structured(web: Web) -> None:
    app, world, login = web
    await mail(app, world, subject="Turbine quote")  # ambiguous: two candidates (L7)
    await mail(app, world, subject="Lunch", to="Erin <erin@nowhere.test>")
    found = await thread_service.list_visible(app.db, actor=world.owner, limit=5)
    ambiguous = next(t.id for t in found if t.subject == "Turbine quote")
    linked = next(t.id for t in found if t.subject == "Lunch")
    await links.link_item(app.db, linked, "deal", "A", actor=world.owner)

    signed_out: Browser = await login(None)
    check_page(await signed_out.page("/login"), "/login")
    owner: Browser = await login("owner")
    urls = [
        "/",
        "/?q=carol",
        "/?show=unlinked&person=p1",
        f"/threads/{ambiguous}",
        f"/threads/{ambiguous}?q=wind",
        f"/threads/{linked}",
        "/deals/A",
        "/persons/p1",
        "/organizations/o1",
        "/me",
    ]
    for url in urls:
        check_page(await owner.page(url), url)
    check_page(await owner.page("/threads/999999", status=404), "/threads/999999")
    # The replace confirmation (409) is a page of its own.
    token = csrf_of(await owner.page(f"/threads/{linked}"))
    conflict = await owner.client.post(
        f"/threads/{linked}/link", data={"csrf": token, "type": "deal", "id": "B"}
    )
    assert conflict.status_code == 409
    check_page(conflict.text, "409 confirmation")
    assert 'role="alertdialog"' in conflict.text and "autofocus" in conflict.text


def test_the_checks_can_fail() -> None:
    bad = (
        '<html><body><main><h1>A</h1><h3>skipped</h3><input id="x" type="text"><button></button>'
        "</main></body></html>"
    )
    try:
        check_page(bad, "bad")
    except AssertionError as failed:
        assert "bad" in str(failed)
    else:
        raise AssertionError("an unlabelled page passed")
