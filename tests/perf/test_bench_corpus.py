"""The ingest bench measures what it claims: its mail survives the wire and every message links by L6."""

from __future__ import annotations

import json
from collections import Counter

from bccd.mail.parse_job import parse_and_detect
from bench import directory_gen
from bench.ingest import corpus
from bench.smtp_throughput import wire


def _unwire(data: bytes) -> bytes:
    """What an SMTP server stores from DATA: the terminating line removed, leading dots undoubled."""
    assert data.endswith(b"\r\n.\r\n")
    lines = data[: -len(b".\r\n")].split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b"..") else line for line in lines)


def test_wire_never_doubles_carriage_returns_and_stuffs_dots() -> None:
    assert wire(b"a\r\nb\n.c\n") == b"a\r\nb\r\n..c\r\n.\r\n"
    assert b"\r\r" not in wire(b"x\r\n\r\ny")


def test_the_bench_forward_is_still_a_forward_after_the_wire() -> None:
    sizes = {"persons": 500, "organizations": 100, "deals": 500}
    for raw in corpus(5, **sizes):
        _, forward = parse_and_detect(_unwire(wire(raw)))
        assert forward is not None and forward.original is not None
        assert forward.original.from_[0].address.startswith("carol")


def test_single_open_deal_persons_match_the_generated_directory() -> None:
    sizes = {"persons": 800, "organizations": 50, "deals": 800}
    open_in: Counter[str] = Counter()
    own_open: set[str] = set()
    for line in directory_gen.lines(1, **sizes):
        record = json.loads(line)
        if record["kind"] != "deal" or record["status"] != "open":
            continue
        for person in {record["person"], *record["participants"]}:
            open_in[person] += 1
        if record["person"] == "p" + record["external_id"][1:]:
            own_open.add(record["person"])
    expected = sorted(int(p[1:]) for p in own_open if open_in[p] == 1)
    assert expected and directory_gen.single_open_deal_persons(**sizes) == expected
