"""Issue 10 end to end in headless Chromium: sign in by link, link an ambiguous thread in one click, see it
on the deal page, replace, unlink, search as you type, rotate the address; hostile mail HTML runs nothing;
the same flow with the keyboard only; no sideways scrolling at 360 px.

Every step waits for the condition it needs (WebDriverWait), never for a fixed time: the machine is shared.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import make_msgid
from typing import Any

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bccd.services import web_auth
from tests.helpers import World, add_item, add_person, make_mail, send
from tests.web.conftest import LiveServer, screenshot

pytestmark = pytest.mark.slow
WAIT = 30  # the machine is shared: slow is not broken


def _wait(driver: Any) -> WebDriverWait[Any]:
    return WebDriverWait(driver, WAIT)


def _loaded(driver: Any) -> None:
    """The new page is complete: its main landmark is there and the document finished loading."""
    _wait(driver).until(lambda d: d.execute_script("return document.readyState") == "complete")
    _wait(driver).until(ec.presence_of_element_located((By.ID, "main")))


def _navigates(driver: Any, action: Any) -> None:
    """Do something that loads a new page, then wait until the old page is gone and the new one loaded."""
    # A mark on the old page's window object: a new document has none. (Selenium's staleness_of asks
    # the old element and Chrome may answer mid-navigation with "Node ... does not belong to the
    # document", an error staleness_of does not catch.)
    driver.execute_script("window.bccdOldPage = true")
    action()
    _wait(driver).until(_new_document)
    _loaded(driver)


def _new_document(driver: Any) -> bool:
    try:
        return bool(driver.execute_script("return window.bccdOldPage === undefined"))
    except WebDriverException:  # the script ran while the old page was being torn down: ask again
        return False


def _click(driver: Any, css: str) -> None:
    """Click a button or link that loads a new page."""
    target = _wait(driver).until(ec.element_to_be_clickable((By.CSS_SELECTOR, css)))
    _navigates(driver, target.click)


def _text(driver: Any, css: str) -> str:
    return str(_wait(driver).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css))).text)


def _sign_in(driver: Any, server: LiveServer, user_id: int) -> None:
    link = server.call(
        web_auth.issue_login_link(server.app.db, user_id, actor=None, public_url=server.base_url)
    )
    driver.get(link.url)
    _loaded(driver)
    _click(driver, "#sign-in")
    assert _text(driver, "h1") == "My inbox"


def _deliver(server: LiveServer, world: World, data: bytes) -> None:
    result = server.call(send(server.app.smtp.port, [world.bcc], data))
    assert result.code == 250, result


def test_salesperson_links_replaces_and_unlinks_an_ambiguous_thread(
    live: tuple[LiveServer, World], driver: Any
) -> None:
    server, world = live
    db, company = server.app.db, world.company_id
    server.call(add_person(db, company, "p2", "Dave Hansen", ["dave@harbour.test"]))
    server.call(add_item(db, company, "deal", "C", person="p2", title="Harbour cranes"))
    _deliver(server, world, make_mail(subject="Crane specs", to="Dave Hansen <dave@harbour.test>"))  # L6
    _deliver(server, world, _quote())
    _sign_in(driver, server, world.owner.id)

    # The inbox says why the thread waits, with both candidates named (L7).
    reason = driver.find_element(By.CSS_SELECTOR, "#unresolved-h + ul .reason").text
    assert reason == "Carol Jensen has 2 open deals — Wind farm, Solar park: pick one"
    assert driver.find_element(By.CSS_SELECTOR, "#list-h + ul .item").text == "Deal: Harbour cranes"
    screenshot(driver, "inbox")
    _click(driver, "#unresolved-h + ul a.subject")
    buttons = driver.find_elements(By.CSS_SELECTOR, "ul.candidates button")
    assert [b.text for b in buttons] == ["Link to Wind farm", "Link to Solar park"]
    screenshot(driver, "thread")

    # The attachment downloads with this browser's session cookie, under the API's file name rules.
    link = driver.find_element(By.CSS_SELECTOR, "ul.attachments a")
    assert link.text == "Turbine quote.pdf" and link.get_attribute("download") is not None
    fetched = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.text().then(t => done([r.status,"
        " r.headers.get('content-disposition'), t])));",
        link.get_attribute("href"),
    )
    assert fetched == [
        200,
        "attachment; filename=\"Turbine quote.pdf\"; filename*=UTF-8''Turbine%20quote.pdf",
        QUOTE,
    ]

    # One click links it; the deal page lists it.
    _click(driver, "button[data-candidate='deal:A']")
    assert driver.find_element(By.ID, "linked-item").text == "Wind farm"
    assert "Linked." in driver.find_element(By.CSS_SELECTOR, ".notice").text
    _click(driver, "#linked-item")
    assert driver.find_element(By.CSS_SELECTOR, "h1").text.endswith("Wind farm")
    assert [a.text for a in driver.find_elements(By.CSS_SELECTOR, "ul.threads .subject")] == ["Turbine quote"]
    driver.back()
    _loaded(driver)

    # Linking to the other candidate asks first (M2: 409) and explains the duplicate-by-forwarding way.
    _click(driver, "button[data-candidate='deal:B']")
    confirm = driver.find_element(By.CSS_SELECTOR, ".confirm")
    assert "forward it again to your Smart Bcc address to duplicate it" in confirm.text
    _click(driver, "#confirm-replace")
    assert driver.find_element(By.ID, "linked-item").text == "Solar park"

    # Search as you type finds the lead; its Link button links it (replace asked again).
    before = driver.current_url
    box = driver.find_element(By.ID, "item-q")
    box.send_keys("lights")
    WebDriverWait(driver, WAIT).until(lambda d: "Harbour lights" in d.find_element(By.ID, "item-hits").text)
    assert driver.current_url == before  # no page load: the results came as you typed
    _click(driver, "#item-hits button")
    _click(driver, "#confirm-replace")
    assert driver.find_element(By.ID, "linked-item").text == "Harbour lights"

    # Unlink: no item again, the decision still explained.
    _click(driver, "#unlink")
    assert driver.find_element(By.CSS_SELECTOR, ".unlinked").text == "No deal, lead or project yet."
    history = driver.find_element(By.CSS_SELECTOR, "ol.history").text
    assert history.count(f"user:{world.owner.id}") == 4


def test_rotate_the_address_from_the_me_page(live: tuple[LiveServer, World], driver: Any) -> None:
    server, world = live
    _sign_in(driver, server, world.owner.id)
    _click(driver, "a[href='/me']")
    old = _text(driver, "#smart-bcc")
    assert old == world.bcc
    # Without the confirmation box the browser refuses to send the form: the box says why, no page loads.
    page = driver.find_element(By.TAG_NAME, "html")
    box = driver.find_element(By.CSS_SELECTOR, "input[name=confirm]")
    _wait(driver).until(ec.element_to_be_clickable((By.ID, "rotate"))).click()
    assert driver.execute_script("return arguments[0].validity.valueMissing", box)
    assert not ec.staleness_of(page)(driver) and _text(driver, "#smart-bcc") == old
    _wait(driver).until(ec.element_to_be_clickable(box)).click()
    _wait(driver).until(ec.element_to_be_selected(box))
    _click(driver, "#rotate")
    _wait(driver).until(lambda d: d.find_element(By.ID, "smart-bcc").text not in ("", old))
    new = _text(driver, "#smart-bcc")
    assert new.endswith("@bcc.test")
    refused = server.call(send(server.app.smtp.port, [old], make_mail()))
    assert refused.code == 0 and refused.refused[old][0] == 550  # T2: the old address is refused


def _hostile_mail() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@acme.test>"
    msg["To"] = "Carol <carol@client.test>"
    msg["Subject"] = "Hostile"
    msg["Message-ID"] = make_msgid(domain="acme.test")
    msg.set_content("plain part")
    msg.add_alternative(
        "<p id='greeting'>Hello</p>"
        "<script>window.bccdPwned = 'script';</script>"
        "<img src='x' onerror=\"window.bccdPwned = 'onerror'\">"
        "<a href=\"javascript:window.bccdPwned='href'\" id='jslink'>click</a>"
        "<img src='https://tracker.example/pixel.gif'>"
        "<div onmouseover=\"window.bccdPwned='hover'\">hover</div>",
        subtype="html",
    )
    return bytes(msg)


def test_mail_html_runs_no_script(live: tuple[LiveServer, World], driver: Any) -> None:
    server, world = live
    _deliver(server, world, _hostile_mail())
    _sign_in(driver, server, world.owner.id)
    _click(driver, "a.subject")
    html = driver.find_element(By.ID, "mail-html")
    assert html.find_element(By.CSS_SELECTOR, "p").text == "Hello"
    link = html.find_element(By.LINK_TEXT, "click")
    assert link.get_attribute("href") is None  # the javascript: URL is gone
    link.click()
    ActionChains(driver).move_to_element(html.find_element(By.XPATH, ".//div[text()='hover']")).perform()
    assert driver.execute_script("return window.bccdPwned === undefined")
    assert "2 remote images not loaded" in driver.find_element(By.CSS_SELECTOR, ".mail .notice").text
    assert not driver.find_elements(By.CSS_SELECTOR, "#mail-html script, #mail-html [onerror]")
    errors = [e for e in driver.get_log("browser") if "Content Security Policy" in e.get("message", "")]
    assert errors == []  # nothing even tried to run: the sanitizer removed it before the CSP had to


def test_docs_work_offline(live: tuple[LiveServer, World], driver: Any) -> None:
    server, _ = live
    driver.get(server.base_url + "/docs")
    WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    assert "bccd" in driver.find_element(By.CSS_SELECTOR, ".title").text


def test_redoc_works_offline(live: tuple[LiveServer, World], driver: Any) -> None:
    server, _ = live
    driver.get(server.base_url + "/redoc")
    WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR, "h1")))
    assert driver.find_element(By.CSS_SELECTOR, "h1").text.startswith("bccd")


QUOTE = "%PDF-1.4 the turbine quote"


def _quote() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@acme.test>"
    msg["To"] = "Carol <carol@client.test>"
    msg["Subject"] = "Turbine quote"
    msg["Message-ID"] = make_msgid(domain="acme.test")
    msg.set_content("Hi Carol,\nthe turbine quote is attached.\n")
    msg.add_attachment(QUOTE.encode(), maintype="application", subtype="pdf", filename="Turbine quote.pdf")
    return msg.as_bytes(policy=SMTP_POLICY)


# What a focused element must show: a solid outline of at least 2 px (app.css :focus-visible).
FOCUS_STYLE = (
    "const s = getComputedStyle(document.activeElement);return [s.outlineStyle, parseFloat(s.outlineWidth)];"
)
MAX_TABS = 60


def _tab_to(driver: Any, css: str) -> None:
    """Press Tab until the element matching `css` has the focus; every stop on the way shows its focus."""
    for _ in range(MAX_TABS):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        style, width = driver.execute_script(FOCUS_STYLE)
        tag = driver.execute_script("return document.activeElement.outerHTML.slice(0, 80)")
        assert style != "none" and width >= 2, ("focus not visible", tag, style, width)
        if driver.execute_script("return document.activeElement.matches(arguments[0])", css):
            return
    raise AssertionError(f"{css} not reached with {MAX_TABS} presses of Tab")


def _press(driver: Any, key: str) -> None:
    """Press a key on the focused element, expecting it to load a new page."""
    _navigates(driver, lambda: ActionChains(driver).send_keys(key).perform())


def test_the_whole_flow_with_the_keyboard_only(live: tuple[LiveServer, World], driver: Any) -> None:
    """Sign in, open the waiting thread, link it, replace the link and unlink it: Tab, Enter and Space."""
    server, world = live
    _deliver(server, world, _quote())
    link = server.call(
        web_auth.issue_login_link(server.app.db, world.owner.id, actor=None, public_url=server.base_url)
    )
    driver.get(link.url)
    _loaded(driver)
    _tab_to(driver, "#sign-in")
    _press(driver, Keys.ENTER)
    assert _text(driver, "h1") == "My inbox"

    # The first Tab shows the skip link; it moves the focus to the content.
    ActionChains(driver).send_keys(Keys.TAB).perform()
    skip = driver.switch_to.active_element
    assert skip.text == "Skip to content" and skip.rect["x"] >= 0 and skip.is_displayed()
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    _wait(driver).until(lambda d: d.execute_script("return document.activeElement.id") == "main")

    _tab_to(driver, "#unresolved-h + ul a.subject")
    _press(driver, Keys.ENTER)
    assert _text(driver, "h1") == "Turbine quote"

    _tab_to(driver, "button[data-candidate='deal:A']")
    _press(driver, Keys.SPACE)
    assert _text(driver, "#linked-item") == "Wind farm"
    assert "Linked." in _text(driver, ".notice")

    # The replace confirmation takes the focus, so the next Tabs are inside it.
    _tab_to(driver, "button[data-candidate='deal:B']")
    _press(driver, Keys.ENTER)
    assert driver.execute_script("return document.activeElement.classList.contains('confirm')")
    _tab_to(driver, "#confirm-replace")
    _press(driver, Keys.ENTER)
    assert _text(driver, "#linked-item") == "Solar park"

    _tab_to(driver, "#unlink")
    _press(driver, Keys.SPACE)
    assert _text(driver, ".unlinked") == "No deal, lead or project yet."


NARROW = 360
# Elements reaching past the window's right edge, except inside a box that scrolls or clips them
# (the mail's HTML and <pre> blocks scroll on their own: a wide table must not widen the page).
OVERFLOWING = """
const inScroller = e => {
  for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
    if (getComputedStyle(a).overflowX !== 'visible') return true;
  }
  return false;
};
return [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5 && !inScroller(e))
  .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className).slice(0, 5);
"""


def _fits(driver: Any, url: str) -> None:
    driver.get(url)
    _loaded(driver)
    width, viewport = driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert viewport == NARROW, (url, viewport, width, driver.execute_script(OVERFLOWING))
    assert width <= NARROW, (url, width)  # no sideways scrolling
    wide = driver.execute_script(OVERFLOWING)
    assert wide == [], (url, wide)


def test_every_page_fits_360_px(live: tuple[LiveServer, World], driver: Any) -> None:
    """A phone's width: long subjects, addresses, links and file names wrap instead of widening the page."""
    server, world = live
    long_word = "Windfarmturbinequotationrevisionfinalfinal" * 3
    msg = EmailMessage()
    msg["From"] = "Alice <alice@acme.test>"
    msg["To"] = "Carol Jensen <carol@client.test>, " + "x" * 60 + "@example-company-with-a-long-name.test"
    msg["Subject"] = "Offer " + long_word
    msg["Message-ID"] = make_msgid(domain="acme.test")
    msg.set_content("See https://example.test/" + "a" * 200 + "\n")
    msg.add_alternative(
        "<p>See <a href='https://example.test/'>https://example.test/" + "b" * 200 + "</a></p>"
        "<table><tr><td>"
        + long_word
        + "</td><td>"
        + long_word
        + "</td></tr></table><pre>"
        + "c" * 200
        + "</pre>",
        subtype="html",
    )
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename=long_word + ".pdf")
    _deliver(server, world, msg.as_bytes(policy=SMTP_POLICY))
    _sign_in(driver, server, world.owner.id)
    tid = driver.find_element(By.CSS_SELECTOR, "a.subject").get_attribute("href").rsplit("/", 1)[-1]
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": NARROW, "height": 800, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        base = server.base_url
        for path in (
            "/",
            "/?q=offer",
            f"/threads/{tid}",
            f"/threads/{tid}?q=wind",
            "/deals/A",
            "/persons/p1",
            "/me",
        ):
            _fits(driver, base + path)
        screenshot(driver, "me-360")
        driver.delete_all_cookies()
        _fits(driver, base + "/login")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
