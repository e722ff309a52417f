"""Issue 10: a mail's HTML is sanitized before it reaches the page (nh3): no script, handlers, js: URLs,
styles or remote images unless the reader asks for them."""

from __future__ import annotations

import pytest

from bccd.web.mailhtml import sanitize

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<a href='javascript:alert(1)'>x</a>",
    "<a href='data:text/html,<script>alert(1)</script>'>x</a>",
    "<svg><script>alert(1)</script></svg>",
    "<iframe src='https://evil.example'></iframe>",
    "<form action='https://evil.example'><input name=p></form>",
    "<div style='background:url(https://t.example/x)'>x</div>",
    "<style>body{background:url(https://t.example/x)}</style>",
    "<object data='x.swf'></object>",
    "<base href='https://evil.example/'>",
    "<meta http-equiv='refresh' content='0;url=https://evil.example'>",
]


@pytest.mark.parametrize("html", HOSTILE)
def test_hostile_html_is_defused(html: str) -> None:
    out = sanitize(html).html.lower()
    for bad in (
        "<script",
        "onerror",
        "javascript:",
        "data:text",
        "<iframe",
        "<form",
        "style",
        "<object",
        "<base",
        "<meta",
        "evil.example",
        "t.example",
    ):
        assert bad not in out, (html, out)


def test_remote_images_are_off_until_asked_for() -> None:
    html = "<p>Hi</p><img src='https://t.example/p.gif' alt='pixel'><img src='data:image/png;base64,AAAA'>"
    blocked = sanitize(html)
    assert blocked.blocked_images == 1 and "t.example" not in blocked.html
    assert "data:image/png;base64,AAAA" in blocked.html  # inline images need no request
    shown = sanitize(html, remote_images=True)
    assert shown.blocked_images == 0 and 'src="https://t.example/p.gif"' in shown.html
    assert "http://" not in sanitize("<img src='http://t.example/p.gif'>", remote_images=True).html


def test_links_open_apart_and_leak_no_referrer() -> None:
    out = sanitize("<a href='https://crm.example/deal/1'>deal</a>").html
    assert 'href="https://crm.example/deal/1"' in out and 'target="_blank"' in out
    assert 'rel="noopener noreferrer nofollow"' in out
