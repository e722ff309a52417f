"""Reading one DATA transfer off the stream (RFC 5321 §4.1.1.4, §4.5.2).

Unlike aiosmtpd's own reader this one keeps lines longer than RFC 5321's 1,000 octets (issue 12 item 5):
a user's own mail client wrote them and refusing would bounce their Bcc copy, so they are stored verbatim
and reported as `longest_line` for the defect list. Only a line over the generous hard cap, or a message
over the size limit, is refused — after the whole transfer is read, so the reply lands where the client
expects it (RFC 5321 §4.2.5). The end of data is CRLF "." CRLF and nothing else: a bare LF or CR before
the dot is content (S6, no smuggling).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

from bccd.smtp.aiosmtpd_compat import stream_buffer

END = b".\r\n"  # searched for; it ends the data only where it starts a line
CRLF = b"\r\n"
# The stream buffer while DATA is read: the data arrives in pieces this big instead of one line at a time
# (a 20 MB base64 attachment is 270,000 lines; read line by line it held the loop for seconds in all).
# Commands keep their line limit: it is restored when the transfer ends.
DATA_BUFFER = 256 * 1024
YIELD_EVERY_PIECES = 8  # a fully buffered message is many pieces: let other sessions run in between


class DataProblem(StrEnum):
    TOO_BIG = "too_big"
    LINE_TOO_LONG = "line_too_long"


@dataclass(frozen=True, slots=True)
class DataResult:
    content: bytes  # empty when refused
    problem: DataProblem | None
    longest_line: int  # octets including CRLF, before dot-unstuffing


class _LineLengths:
    """The longest line (octets, CRLF included) of content arriving in pieces that may split a line, or its
    CRLF, anywhere. Lines end at CRLF only: a bare CR or LF is content (S6)."""

    __slots__ = ("cr", "longest", "open")

    def __init__(self) -> None:
        self.longest = 0
        self.open = 0  # octets of the line not yet ended
        self.cr = False  # the last piece ended in CR: a LF next ends that line

    @property
    def current(self) -> int:
        return max(self.longest, self.open)

    def feed(self, data: bytes) -> None:
        if self.cr and data[:1] == b"\n":
            self.longest = max(self.longest, self.open + 1)
            self.open = 0
            data = data[1:]
        if not data:
            self.cr = False
            return
        parts = data.split(CRLF)
        if len(parts) == 1:
            self.open += len(data)
        else:
            self.longest = max(self.longest, self.open + len(parts[0]) + 2)
            if len(parts) > 2:
                self.longest = max(self.longest, max(map(len, parts[1:-1])) + 2)
            self.open = len(parts[-1])
        self.cr = data.endswith(b"\r")


async def read_data(
    reader: asyncio.StreamReader, *, size_limit: int | None, line_cap: int, buffer: int = DATA_BUFFER
) -> DataResult:
    with stream_buffer(reader, buffer):
        return await _read(reader, size_limit, line_cap)


async def _read(reader: asyncio.StreamReader, size_limit: int | None, line_cap: int) -> DataResult:
    chunks: list[bytes] = []
    lines = _LineLengths()
    size = 0
    tail = CRLF  # the two octets before the next piece; the DATA command's CRLF comes first
    problem: DataProblem | None = None
    pieces = 0
    done = False
    while not done:
        pieces += 1
        if pieces % YIELD_EVERY_PIECES == 0:
            await asyncio.sleep(0)
        try:
            piece = await reader.readuntil(END)
            found = True
        except asyncio.LimitOverrunError as overrun:
            piece = await reader.read(overrun.consumed)  # what is buffered, short of a split ".\r\n"
            found = False
        except asyncio.IncompleteReadError as eof:
            raise ConnectionResetError("connection closed during DATA") from eof
        if not piece:
            raise ConnectionResetError("connection closed during DATA")
        content = piece
        if found:
            before = piece[: -len(END)]
            ends_line = before.endswith(CRLF) if len(before) >= 2 else (tail + before).endswith(CRLF)
            if ends_line:  # CRLF "." CRLF: the CRLF belongs to the last line, the rest ends the data
                content, done = before, True
        size += len(content)
        lines.feed(content)
        tail = content[-2:] if len(content) >= 2 else (tail + content)[-2:]
        # Too big wins over a long line, whichever came first: one piece may hold both.
        if size_limit and size > size_limit:
            problem = DataProblem.TOO_BIG
        elif problem is None and lines.current > line_cap:
            problem = DataProblem.LINE_TOO_LONG
        if problem is not None:
            chunks.clear()  # nothing of a refused message is kept in memory
        else:
            chunks.append(content)
    if problem is not None:
        return DataResult(b"", problem, lines.current)
    data = b"".join(chunks)
    if data.startswith(b"."):  # §4.5.2 dot-unstuffing: one leading "." off every line
        data = data[1:]
    return DataResult(data.replace(b"\r\n.", CRLF), None, lines.current)
