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

END = b".\r\n"
CRLF = b"\r\n"
YIELD_EVERY_LINES = 512  # a whole buffered message is many lines: let other sessions run in between


class DataProblem(StrEnum):
    TOO_BIG = "too_big"
    LINE_TOO_LONG = "line_too_long"


@dataclass(frozen=True, slots=True)
class DataResult:
    content: bytes  # empty when refused
    problem: DataProblem | None
    longest_line: int  # octets including CRLF, before dot-unstuffing


async def read_data(reader: asyncio.StreamReader, *, size_limit: int | None, line_cap: int) -> DataResult:
    lines: list[bytes] = []
    fragments: list[bytes] = []  # pieces of a line longer than the stream buffer
    line_length = 0
    longest = 0
    size = 0
    problem: DataProblem | None = None
    pieces = 0
    while True:
        pieces += 1
        if pieces % YIELD_EVERY_LINES == 0:
            await asyncio.sleep(0)
        try:
            piece = await reader.readuntil(CRLF)
            complete = True
        except asyncio.LimitOverrunError as overrun:
            piece = await reader.read(overrun.consumed)  # what is buffered, short of a split CRLF
            complete = False
        except asyncio.IncompleteReadError as eof:
            raise ConnectionResetError("connection closed during DATA") from eof
        if not piece:
            raise ConnectionResetError("connection closed during DATA")
        if not fragments and complete and piece == END:
            break
        line_length += len(piece)
        size += len(piece)
        if problem is None:
            if size_limit and size > size_limit:
                problem = DataProblem.TOO_BIG
            elif line_length > line_cap:
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
