"""A mail's HTML made safe to show inside our page: sanitized by nh3, remote images off by default.

nh3 (the Rust ammonia sanitizer) keeps a fixed allow-list of tags and attributes: no script, no style,
no event handlers, no javascript: URLs. The page's CSP (script-src 'self') is the second wall.
"""

from __future__ import annotations

from dataclasses import dataclass

import nh3

# Images that need no request to another server: inline data and parts of the mail itself.
LOCAL_IMAGE_SCHEMES = ("data:image/", "cid:")
_LINK_ATTRS = {"a": {"target": "_blank"}}


@dataclass(frozen=True, slots=True)
class SafeHtml:
    html: str
    blocked_images: int  # remote images left out (the reader may choose to load them)


def sanitize(html: str, *, remote_images: bool = False) -> SafeHtml:
    blocked = 0

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attribute == "src":
            lowered = value.strip().lower()
            if lowered.startswith(LOCAL_IMAGE_SCHEMES):
                return value
            if remote_images and lowered.startswith("https://"):
                return value
            blocked += 1
            return None
        if attribute == "href" and value.strip().lower().startswith("data:"):
            return None  # data: URLs are for inline images only
        return value

    cleaned = nh3.clean(
        html,
        clean_content_tags={"script", "style", "title", "head"},
        attribute_filter=keep,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values=_LINK_ATTRS,
        url_schemes={"http", "https", "mailto", "tel", "cid", "data"},
    )
    return SafeHtml(cleaned, blocked)
