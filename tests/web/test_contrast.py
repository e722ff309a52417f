"""WCAG 2.x contrast of the pages' colours (issue 10, "contrast"): every foreground/background pair that
bccd/web/static/app.css declares or that the templates put together reaches 4.5:1 for text (AA, normal
size) and 3:1 for the focus ring and input borders (non-text contrast, WCAG 1.4.11)."""

from __future__ import annotations

import re

import pytest

from bccd.web.render import STATIC_DIR

CSS = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
TEXT = 4.5
NON_TEXT = 3.0
_VAR = re.compile(r"(--[a-z-]+)\s*:\s*(#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3})\b")
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")


def variables() -> dict[str, str]:
    root = re.search(r":root\s*\{([^}]*)\}", CSS)
    assert root, "app.css declares its colours in :root"
    return dict(_VAR.findall(root.group(1)))


def _rgb(colour: str) -> tuple[float, float, float]:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    r, g, b = (int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return r, g, b


def luminance(colour: str) -> float:
    """WCAG relative luminance of an sRGB colour."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def resolve(value: str, names: dict[str, str]) -> str | None:
    """A declared colour: `#abc`/`#aabbcc` or `var(--name)`; None for anything else (inherit, none)."""
    value = value.strip()
    found = re.fullmatch(r"var\((--[a-z-]+)\)", value)
    if found:
        return names[found.group(1)]
    return value if re.fullmatch(r"#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}", value) else None


def declared_pairs() -> list[tuple[str, str, str]]:
    """(selector, colour, background) for every rule that sets both."""
    names = variables()
    pairs: list[tuple[str, str, str]] = []
    for selector, body in _RULE.findall(CSS):
        props: dict[str, str] = {}
        for declaration in str(body).split(";"):
            key, colon, value = declaration.partition(":")
            if colon:
                props[key.strip()] = value.strip()
        fg = resolve(props.get("color", ""), names)
        background = props.get("background-color", props.get("background", "")).split(" ")[0]
        bg = resolve(background, names)
        if fg and bg:
            pairs.append((str(selector).strip(), fg, bg))
    return pairs


# Text colour on the background it sits on where the CSS does not say both in one rule:
# (what, foreground variable, background variable).
COMBINED = [
    ("body text", "--fg", "--bg"),
    ("links", "--accent", "--bg"),
    ("help text, dates, kinds", "--muted", "--bg"),
    ("the reason a thread waits", "--warn", "--bg"),
    ("text in a notice", "--fg", "--ok-bg"),
    ("a link in a notice", "--accent", "--ok-bg"),
    ("text in the replace confirmation", "--fg", "--warn-bg"),
    ("a link in the replace confirmation", "--accent", "--warn-bg"),
    ("the warning above rotating the address", "--warn", "--bg"),
]
NON_TEXT_PAIRS = [
    ("the focus ring", "--focus", "--bg"),
    ("the border of the search box and the buttons", "--muted", "--bg"),
    ("the unresolved marker", "--warn", "--bg"),
]


def test_the_contrast_formula() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#fff", "#fff") == pytest.approx(1.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the known AA grey
    assert contrast("#777777", "#ffffff") < TEXT


def test_rules_declaring_colour_and_background_reach_aa() -> None:
    pairs = declared_pairs()
    assert len(pairs) >= 3, pairs  # html, button, button.primary at least: the parser found them
    for selector, fg, bg in pairs:
        assert contrast(fg, bg) >= TEXT, (selector, fg, bg, round(contrast(fg, bg), 2))


@pytest.mark.parametrize(("what", "fg", "bg"), COMBINED)
def test_text_on_its_background_reaches_aa(what: str, fg: str, bg: str) -> None:
    names = variables()
    ratio = contrast(names[fg], names[bg])
    assert ratio >= TEXT, (what, names[fg], names[bg], round(ratio, 2))


@pytest.mark.parametrize(("what", "fg", "bg"), NON_TEXT_PAIRS)
def test_focus_ring_and_borders_reach_three_to_one(what: str, fg: str, bg: str) -> None:
    names = variables()
    ratio = contrast(names[fg], names[bg])
    assert ratio >= NON_TEXT, (what, names[fg], names[bg], round(ratio, 2))


def test_the_focus_ring_sits_on_the_page_background() -> None:
    """With an offset the ring is drawn outside the element, on the page: --focus against --bg counts,
    whatever the focused element's own colour (a primary button is blue)."""
    rule = re.search(r":focus-visible\s*\{([^}]*)\}", CSS)
    assert rule, "app.css styles :focus-visible"
    assert re.search(r"outline:\s*[3-9]px solid var\(--focus\)", rule.group(1)), rule.group(1)
    offset = re.search(r"outline-offset:\s*(\d+)px", rule.group(1))
    assert offset and int(offset.group(1)) >= 2


def test_buttons_and_inputs_have_a_visible_border() -> None:
    for selector in ("button", 'input[type="search"]'):
        rule = re.search(re.escape(selector) + r"\s*\{([^}]*)\}", CSS)
        assert rule and "border: 1px solid var(--muted)" in rule.group(1), selector


def test_every_colour_variable_is_checked() -> None:
    """A new colour in :root must join a pair above (so that it cannot slip in unchecked)."""
    used = {v for _, a, b in COMBINED + NON_TEXT_PAIRS for v in (a, b)}
    unchecked = set(variables()) - used - {"--line", "--accent-fg"}  # borders; accent-fg in a CSS rule
    assert unchecked == set()
    assert any(fg == variables()["--accent-fg"] for _, fg, _ in declared_pairs())
