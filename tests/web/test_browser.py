"""Issue 10 end to end in headless Chromium: sign in by link, link an ambiguous thread in one click, see it
on the deal page, replace, unlink, search as you type, rotate the address; hostile mail HTML runs nothing."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bccd.services import web_auth
from tests.helpers import World, add_item, add_person, make_mail, send
from tests.web.conftest import LiveServer, screenshot

pytestmark = pytest.mark.slow
WAIT = 30  # the machine is shared: slow is not broken


def _click(driver: Any, css: str) -> None:
    """Click a button that loads a new page, and wait until the old page is gone."""
    old = driver.find_element(By.TAG_NAME, "html")
    WebDriverWait(driver, WAIT).until(ec.element_to_be_clickable((By.CSS_SELECTOR, css))).click()
    WebDriverWait(driver, WAIT).until(ec.staleness_of(old))


def _sign_in(driver: Any, server: LiveServer, user_id: int) -> None:
    link = server.call(
        web_auth.issue_login_link(server.app.db, user_id, actor=None, public_url=server.base_url)
    )
    driver.get(link.url)
    _click(driver, "#sign-in")
    assert driver.find_element(By.CSS_SELECTOR, "h1").text == "My inbox"


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
    _deliver(
        server, world, make_mail(subject="Turbine quote", body="Hi Carol,\nthe turbine quote is attached.\n")
    )
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

    # One click links it; the deal page lists it.
    _click(driver, "button[data-candidate='deal:A']")
    assert driver.find_element(By.ID, "linked-item").text == "Wind farm"
    assert "Linked." in driver.find_element(By.CSS_SELECTOR, ".notice").text
    _click(driver, "#linked-item")
    assert driver.find_element(By.CSS_SELECTOR, "h1").text.endswith("Wind farm")
    assert [a.text for a in driver.find_elements(By.CSS_SELECTOR, "ul.threads .subject")] == ["Turbine quote"]
    driver.back()

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
    old = driver.find_element(By.ID, "smart-bcc").text
    assert old == world.bcc
    driver.find_element(By.ID, "rotate").click()  # the confirmation box is required: nothing happens
    assert driver.find_element(By.ID, "smart-bcc").text == old
    driver.find_element(By.CSS_SELECTOR, "input[name=confirm]").click()
    _click(driver, "#rotate")
    new = driver.find_element(By.ID, "smart-bcc").text
    assert new != old and new.endswith("@bcc.test")
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


def test_inbox_at_360_px(live: tuple[LiveServer, World], driver: Any) -> None:
    server, world = live
    _deliver(server, world, make_mail(subject="Small screen"))
    _sign_in(driver, server, world.owner.id)
    driver.set_window_size(360, 800)
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 360, width  # no sideways scrolling
    _click(driver, "a.subject")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 360


def test_redoc_works_offline(live: tuple[LiveServer, World], driver: Any) -> None:
    server, _ = live
    driver.get(server.base_url + "/redoc")
    WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR, "h1")))
    assert driver.find_element(By.CSS_SELECTOR, "h1").text.startswith("bccd")
