"""Measure forward detection accuracy on the fixture corpus, per client and per language.

Run from the repository root: `.venv/bin/python -m bench.forward_accuracy [--failures]`. A forward counts as
correct when the original's From, To, Cc (addresses and names) and subject are all exactly right; a negative
when no forward is reported; an unparseable forward when it is reported as a forward not understood (F4).
It also reports the cost of detection on the SMTP hot path as a ratio to a compat32 parse of the same
message, measured in the same run (DESIGN: speed targets are ratios, never timed unit tests).
"""

from __future__ import annotations

import sys
import time
import timeit
from collections import defaultdict
from email.parser import BytesParser
from email.policy import compat32

from bccd.mail.forwards import detect_forward
from tests.forwards.corpus import CORPUS, as_data, detect, load_cases, participants_correct
from tests.forwards.mime import bodies

# A typical non-forward on the hot path: a ~6.5 KB reply, text and HTML, with an "On ... wrote:" quote.
_PROSE = "Thanks for the update, we will review the proposal and come back to you on Thursday at 10:00.\n"
_REPLY = (
    "From: Emma Clarke <emma.clarke@northwind-sales.co.uk>\nTo: James <james@harbourfreight.ie>\n"
    "Subject: Re: Quote for Q3 delivery\nMIME-Version: 1.0\n"
    'Content-Type: multipart/alternative; boundary="b"\n\n--b\nContent-Type: text/plain; charset=utf-8\n\n'
    + _PROSE * 30
    + "\nOn Mon, Mar 4, 2024 at 10:15 AM James <james@harbourfreight.ie> wrote:\n> "
    + _PROSE
    + '\n--b\nContent-Type: text/html; charset=utf-8\n\n<div dir="ltr">'
    + (_PROSE.strip() + "<br>") * 30
    + "</div>\n--b--\n"
).encode()


def _per_call(function: object, number: int) -> float:
    assert callable(function)
    return min(timeit.repeat(function, number=number, repeat=5)) / number


def speed() -> None:
    parser = BytesParser(policy=compat32)
    forward_raw = (CORPUS / "forwards/outlook_desktop/de.eml").read_bytes()
    new_mail = _REPLY.replace(b"Subject: Re: ", b"Subject: ")
    samples = (
        ("reply, Re: subject (6.5 KB)", _REPLY),
        ("new mail, no prefix (6.5 KB)", new_mail),
        ("Outlook forward (de, text+html)", forward_raw),
    )
    for label, raw in samples:
        msg = parser.parsebytes(raw)
        text, html = bodies(msg)
        parse_cost = _per_call(lambda raw=raw: parser.parsebytes(raw), 200)
        detect_cost = _per_call(lambda msg=msg, text=text, html=html: detect_forward(msg, text, html), 200)
        print(
            f"  {label:<34} detect {detect_cost * 1e6:7.1f} us = {detect_cost / parse_cost:5.2f} x "
            f"compat32 parse ({parse_cost * 1e6:.1f} us)"
        )


def main(argv: list[str]) -> int:
    cases = load_cases()
    by_client: dict[str, list[bool]] = defaultdict(list)
    by_language: dict[str, list[bool]] = defaultdict(list)
    by_category: dict[str, list[bool]] = defaultdict(list)
    failures: list[str] = []
    started = time.perf_counter()
    for case in cases:
        actual = as_data(detect(case))
        ok = participants_correct(case.expect, actual)
        if case.category == "unparseable":
            ok = actual is not None and actual["original"] is None
        if ok and case.format == "alternative":
            ok = participants_correct(case.expect, as_data(detect(case, html_only=True)))
        by_category[case.category].append(ok)
        if case.category == "forward":
            by_client[case.client].append(ok)
            by_language[case.language].append(ok)
        if not ok:
            failures.append(f"{case.file}\n  expected {case.expect}\n  actual   {actual}")
    elapsed = time.perf_counter() - started

    def line(name: str, results: list[bool]) -> str:
        return f"  {name:<26} {sum(results):>4}/{len(results):<4} {100.0 * sum(results) / len(results):6.1f}%"

    print("forwards by client:")
    for name in sorted(by_client):
        print(line(name, by_client[name]))
    print("forwards by language:")
    for name in sorted(by_language):
        print(line(name, by_language[name]))
    print("by category:")
    for name in ("forward", "negative", "unparseable"):
        print(line(name, by_category[name]))
    total = [ok for results in by_category.values() for ok in results]
    print(line("all fixtures", total))
    print(f"{len(cases)} fixtures in {elapsed:.2f} s (parse + detect, alternatives twice)")
    print("hot path cost:")
    speed()
    if "--failures" in argv:
        for failure in failures:
            print(failure)
    return 0 if all(total) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
