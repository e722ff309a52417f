"""The DATA reader (S6, RFC 5321 §4.1.1.4 and §4.5.2) against the line-by-line reader it replaced.

bccd reads DATA in pieces of up to 256 KiB found with `readuntil(".\\r\\n")` (a 20 MB attachment read one
line at a time held the loop for seconds). The reference below is the earlier reader, which took one
CRLF-ended line per call: every stream, however it is split into TCP segments and whatever the buffer
size, must give the same content, the same refusal and the same longest line, and leave what follows
the end of data (a pipelined command) unread. One rule changed with the new reader and the reference
follows it: a message over the size limit is refused as too big even when an over-long line came first.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bccd.smtp.data import DataProblem, DataResult, read_data

TOKENS = [b".", b"..", b"\r", b"\n", b"\r\n", b".\r\n", b"\r\n.", b"a", b"hello world", b"x" * 300]
NEXT = b"QUIT\r\n"


async def line_by_line(reader: asyncio.StreamReader, *, size_limit: int | None, line_cap: int) -> DataResult:
    lines: list[bytes] = []
    fragments: list[bytes] = []  # pieces of a line longer than the stream buffer
    line_length = 0
    longest = 0
    size = 0
    problem: DataProblem | None = None
    while True:
        try:
            piece = await reader.readuntil(b"\r\n")
            complete = True
        except asyncio.LimitOverrunError as overrun:
            piece = await reader.read(overrun.consumed)  # what is buffered, short of a split b"\r\n"
            complete = False
        except asyncio.IncompleteReadError as eof:
            raise ConnectionResetError("connection closed during DATA") from eof
        if not piece:
            raise ConnectionResetError("connection closed during DATA")
        if not fragments and complete and piece == b".\r\n":
            break
        line_length += len(piece)
        size += len(piece)
        if size_limit and size > size_limit:
            problem = DataProblem.TOO_BIG  # too big wins, whenever it is found (bccd's rule since 2026-12)
        if problem is None:
            if line_length > line_cap:
                problem = DataProblem.LINE_TOO_LONG
            if problem is not None:
                lines.clear()  # nothing of a refused message is kept in memory
                fragments.clear()
        if not complete:
            if problem is None:
                fragments.append(piece)
            continue
        longest = max(longest, line_length)
        line_length = 0
        if problem is not None:
            fragments.clear()
            continue
        if fragments:
            fragments.append(piece)
            piece = b"".join(fragments)
            fragments.clear()
        lines.append(piece[1:] if piece.startswith(b".") else piece)  # §4.5.2 dot-unstuffing
    if problem is not None:
        return DataResult(b"", problem, longest)
    return DataResult(b"".join(lines), None, longest)


async def _read_both(
    stream: bytes, splits: list[int], buffer: int, size_limit: int | None, line_cap: int
) -> tuple[DataResult, DataResult, bytes]:
    new = asyncio.StreamReader(limit=64)
    old = asyncio.StreamReader(limit=line_cap + 2)
    old.feed_data(stream)
    old.feed_eof()

    async def feed() -> None:
        at = 0
        for cut in [*sorted(splits), len(stream)]:
            if cut > at:
                new.feed_data(stream[at:cut])
                at = cut
            await asyncio.sleep(0)
        new.feed_eof()

    feeding = asyncio.create_task(feed())
    got = await read_data(new, size_limit=size_limit, line_cap=line_cap, buffer=buffer)
    await feeding
    rest = await new.read()
    return got, await line_by_line(old, size_limit=size_limit, line_cap=line_cap), rest


def _same(got: DataResult, want: DataResult) -> None:
    assert got.problem == want.problem
    assert got.content == want.content
    if want.problem is None:
        assert got.longest_line == want.longest_line


@given(
    tokens=st.lists(st.sampled_from(TOKENS), max_size=60),
    splits=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
    buffer=st.sampled_from([8, 64, 4096]),
    size_limit=st.sampled_from([None, 500]),
    line_cap=st.sampled_from([100, 1000]),
)
def test_s6_same_as_the_line_by_line_reader(
    tokens: list[bytes], splits: list[int], buffer: int, size_limit: int | None, line_cap: int
) -> None:
    stream = b"".join(tokens) + b"\r\n.\r\n" + NEXT
    got, want, rest = asyncio.run(_read_both(stream, splits, buffer, size_limit, line_cap))
    _same(got, want)
    assert rest.endswith(NEXT)


@pytest.mark.parametrize(
    ("stream", "content"),
    [
        (b".\r\n", b""),  # an empty message
        (b"..\r\n.\r\n", b".\r\n"),  # a line of one dot, stuffed
        (b"a.\r\nb\r\n.\r\n", b"a.\r\nb\r\n"),  # "." ending a line is content
        (b"a\n.\r\n.\r\n", b"a\n.\r\n"),  # after a bare LF a "." does not start a line
        (b"a\r.\r\n.\r\n", b"a\r.\r\n"),  # nor after a bare CR
    ],
)
def test_s6_end_of_data_is_crlf_dot_crlf_only(stream: bytes, content: bytes) -> None:
    for buffer in (8, 64, 256 * 1024):
        got, want, rest = asyncio.run(_read_both(stream + NEXT, [1, 2, 3, 5], buffer, None, 1000))
        assert got.content == content == want.content
        assert rest == NEXT


def test_s6_a_long_line_across_pieces_is_measured_whole() -> None:
    line = b"y" * 5000 + b"\r\n"
    got, want, _ = asyncio.run(_read_both(line + b".\r\n" + NEXT, [4999, 5000, 5001], 64, None, 10_000))
    assert got.longest_line == want.longest_line == len(line)
    refused, _, rest = asyncio.run(_read_both(line + b".\r\n" + NEXT, [2500], 64, None, 1000))
    assert refused.problem is DataProblem.LINE_TOO_LONG and refused.content == b"" and rest == NEXT


def test_the_command_line_limit_is_back_after_data() -> None:
    async def go() -> tuple[int, int]:
        reader = asyncio.StreamReader(limit=1002)
        reader.feed_data(b"hello\r\n.\r\n")
        await read_data(reader, size_limit=None, line_cap=1000)
        return reader._limit, 1002  # type: ignore[attr-defined]

    limit, expected = asyncio.run(go())
    assert limit == expected
