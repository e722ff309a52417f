"""Measure forward detection accuracy on two sets, per family, client and language (issue 14).

Run from the repository root: `.venv/bin/python -m bench.forward_accuracy [--failures]`.

1. The generated corpus (`tests/forwards/`, written by our own make_corpus.py from our own label tables):
   it measures agreement with ourselves.
2. The independent set (`tests/forwards_real/`): real client output from public repositories with
   hand-written expectations. This is the score the README quotes.

A forward counts as correct when the original's From, To, Cc (addresses and names) and subject are all
exactly right; a negative when no forward is reported; an unparseable forward when it is reported as a
forward not understood (F4).
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
from tests.forwards_real.real import REAL_THRESHOLD, by, correct, detect_real, load_real_cases, observed

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


def _line(name: str, results: list[bool]) -> str:
    return f"  {name:<26} {sum(results):>4}/{len(results):<4} {100.0 * sum(results) / len(results):6.1f}%"


def independent(failures: list[str]) -> float:
    """Score the independent set; print it per family, client and language; return the share correct."""
    cases = load_real_cases()
    results: dict[str, bool] = {}
    for case in cases:
        detection = detect_real(case)
        results[case.id] = correct(case, detection)
        if not results[case.id]:
            failures.append(
                f"{case.sample} [{case.family}]\n  expected {case.expect}\n  actual   {observed(detection)}"
            )
    print("independent set (real client output, tests/forwards_real):")
    for key in ("family", "client", "language"):
        print(f" by {key}:")
        for name, group in sorted(by(cases, key).items()):
            print(_line(name, [results[c.id] for c in group]))
    forwards = [results[c.id] for c in cases if not c.negative]
    negatives = [results[c.id] for c in cases if c.negative]
    print(_line("forwards", forwards))
    print(_line("negatives (no forward)", negatives))
    total = list(results.values())
    print(_line("independent set", total))
    return sum(total) / len(total)


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

    line = _line
    print("generated corpus (tests/forwards, written by make_corpus.py):")
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
    real_failures: list[str] = []
    share = independent(real_failures)
    print("hot path cost:")
    speed()
    if "--failures" in argv:
        for failure in failures + real_failures:
            print(failure)
    return 0 if all(total) and share >= REAL_THRESHOLD else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
