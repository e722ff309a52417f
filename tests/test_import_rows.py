"""Import lines: the fast path (bccd.import_rows.fast_row) gives exactly the row the models give, and leaves
every line it is not sure of to them (issue 13 target 3)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bccd.import_rows import fast_decode, fast_row, model_row
from bccd.records import split_import_line
from bench import directory_gen

_GOOD_TEXT = st.one_of(
    st.sampled_from(["o1", "Carol", "Ünïcødé", "Ω", "a b"]),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8),
)
_ODD_TEXT = st.one_of(
    st.sampled_from([" padded", "tail ", "a\tb", "x\u200by", "\u00a0nb", "", "\u2028", "a\x7f"]),
    st.text(max_size=8),
    st.text(min_size=199, max_size=201, alphabet="ab"),
    st.text(min_size=499, max_size=501, alphabet="ab "),
)
_ODD = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _ODD_TEXT, st.lists(_ODD_TEXT)
)
_GOOD_TIMESTAMPS = st.one_of(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30)).map(
        lambda d: d.isoformat().replace("+00:00", "Z")
    ),
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=st.timezones()
    ).map(lambda d: d.isoformat()),
)
_ODD_TIMESTAMPS = st.one_of(
    st.sampled_from(
        [
            "2020-01-01T00:00:00.5+05:30",
            "2020-01-01T00:00:00.123456-00:00",
            "2020-02-30T00:00:00Z",
            "2020-01-01T24:00:00Z",
            "2020-01-01T23:59:60Z",
            "1970-01-01T00:00:00+00:01",
            "1969-12-31T23:59:59-00:01",
            "9998-12-31T23:59:59-01:00",
            "9999-01-01T00:00:00Z",
            "2020-01-01 00:00:00Z",
            "2020-01-01T00:00:00.1234567Z",
            "2020-01-01T00:00:00+23:59",
            "2020-01-01T00:00:00+24:00",
            "0001-01-01T00:00:00+05:00",
            "1600000000",
        ]
    ),
    st.integers(),
)
_GOOD_EMAILS = st.lists(
    st.sampled_from(["carol@client.test", "Carol@Client.TEST", " a@b.example ", "é@ü.de", "x.y+z@a-b.c.io"]),
    max_size=3,
)
_ODD_EMAILS = st.lists(
    st.sampled_from(
        ["not-an-address", "x@y.invalid", "a@b", "a..b@c.de", "a@-b.de", "a@b.onion", "q@x.local"]
    ),
    min_size=1,
    max_size=2,
)
_STATUS = st.sampled_from(["open", "won", "lost", "archived", "completed", "deleted", "bogus", "Open"])
_REF = st.one_of(st.none(), _GOOD_TEXT)
_FIELDS: dict[str, dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]]] = {
    "organization": {"name": (_GOOD_TEXT, _ODD), "created_at": (_GOOD_TIMESTAMPS, _ODD_TIMESTAMPS)},
    "person": {
        "name": (_GOOD_TEXT, _ODD),
        "emails": (_GOOD_EMAILS, st.one_of(_ODD_EMAILS, _ODD)),
        "organization": (_REF, _ODD),
        "created_at": (_GOOD_TIMESTAMPS, _ODD_TIMESTAMPS),
    },
}
_FIELDS["deal"] = {
    "title": (_GOOD_TEXT, _ODD),
    "person": (_REF, _ODD),
    "organization": (_REF, _ODD),
    "status": (_STATUS, _ODD),
    "created_at": (_GOOD_TIMESTAMPS, _ODD_TIMESTAMPS),
    "participants": (st.lists(_GOOD_TEXT, max_size=4), st.lists(st.one_of(_GOOD_TEXT, _ODD), min_size=1)),
}
_FIELDS["lead"] = _FIELDS["project"] = {k: v for k, v in _FIELDS["deal"].items() if k != "participants"}


@st.composite
def _lines(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly good lines of every kind, each field now and then odd (a type, a space, a length, …)."""
    odd = draw(st.integers(0, 3)) == 0  # a quarter of the lines have something odd somewhere
    kind = draw(st.sampled_from([*_FIELDS, "planet"] if odd else list(_FIELDS)))
    line: dict[str, Any] = {
        "kind": kind,
        "company": draw(st.one_of(st.integers(1, 5), st.just("Acme"), st.just(True), st.just(1.0)))
        if odd
        else 1,
        "external_id": draw(st.one_of(_GOOD_TEXT, _ODD) if odd else _GOOD_TEXT),
    }
    for key, (good, bad) in _FIELDS.get(kind, _FIELDS["deal"]).items():
        if key in ("name", "title") or draw(st.booleans()):
            line[key] = draw(st.one_of(good, bad) if odd else good)
    if odd and draw(st.booleans()):
        line[draw(st.sampled_from(["shoe_size", "emails", "participants", "kind", "title"]))] = draw(_ODD)
    if odd and draw(st.integers(0, 5)) == 0:
        line.pop(draw(st.sampled_from(["kind", "company", "external_id", "name", "title"])), None)
    return line


def _by_models(data: dict[str, Any]) -> Any:
    try:
        return model_row(*split_import_line(data))
    except (ValidationError, ValueError):
        return None


@settings(max_examples=1500)
@given(_lines())
@example({"kind": "deal", "company": 1, "external_id": "d", "title": "D", "participants": ["p", "q", "p"]})
@example(
    {
        "kind": "person",
        "company": 1,
        "external_id": "p",
        "name": "P",
        "emails": ["A@b.example", "a@B.example"],
    }
)
def test_fast_path_gives_what_the_models_give(data: dict[str, Any]) -> None:
    fast = fast_row(dict(data))
    if fast is not None:  # the fast path is sure: the models must agree, value for value
        assert fast == _by_models(dict(data))


def test_generated_directories_take_the_fast_path() -> None:
    """The bench's lines are the plainest kind: every one goes the fast way (so the bench measures it)."""
    for line in directory_gen.lines(1, persons=50, organizations=10, deals=50):
        data = fast_decode(line.encode(), 1_000_000)
        assert data is not None and fast_row(data) is not None, line


def test_fast_decode_leaves_odd_input_to_the_full_path() -> None:
    assert fast_decode(b'{"a": 1}', 100) == {"a": 1}
    for raw in (b"\xef\xbb\xbf{}", b'{"a": "\xff"}', b"[1]", b"{oops", b"", b'"s"', b'{"a": 1}' + b" " * 100):
        assert fast_decode(raw, 100) is None, raw
    assert fast_decode(json.dumps({"a": "é"}), 100) == {"a": "é"}


def test_fast_decode_reads_what_json_loads_reads() -> None:
    """The scanner-based decoding accepts exactly the objects json.loads accepts (else: the full path)."""
    cases = [
        b'{"a": 1}\n',
        b'{"a": 1}\r\n',
        b'{"a": 1} \t ',
        b'{"a": 1}\x0b',  # not JSON whitespace: json.loads refuses
        b'{"a": 1}\xc2\xa0',
        b'{"a": 1}{"b": 2}',
        b'{"a": 1} x',
        b' {"a": 1}',
        b'{"a": [1, {"b": null}], "c": "\\u00e9"}',
        b'{"a": NaN}',
        b'{"a": 1,}',
        b'{"a": "x\ty"}',  # a raw control character in a string: refused by json.loads (strict)
        b"{" * 5000 + b"}" * 5000,
    ]
    for raw in cases:
        try:
            expected = json.loads(raw.decode())
        except (ValueError, RecursionError):
            expected = None
        got = fast_decode(raw, 1_000_000)
        if got is not None:
            assert got == expected, raw
        else:  # left to the full path: never something json.loads reads as an object (but a leading space)
            assert not isinstance(expected, dict) or raw.startswith(b" "), raw
