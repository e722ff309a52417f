"""Benchmark: parse_message against the bare compat32 parse of the same 6.5 KB message, in one run.

Run: .venv/bin/python bench/parse_bench.py [--seconds 2]
Prints each per-message time and the ratio parse_message / bare parse (DESIGN.md: report ratios
against a baseline measured in the same run, never absolute times in tests).
"""

from __future__ import annotations

import argparse
import quopri
import sys
import time
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import compat32, default
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bccd.mail.message import parse_message

_PARAGRAPH = (
    "Hei Kari, takk for et godt møte i går. Som avtalt sender jeg over tilbudet på lisensene, med "
    "rabatten vi snakket om for tre års binding. Gi meg beskjed om dere har spørsmål før fredag, så "
    "ordner jeg kontrakten. "
)


def sample_message() -> bytes:
    """A typical 6.5 KB multipart/alternative mail: relay headers, DKIM, QP text and HTML parts."""
    signature = "\n\nMed vennlig hilsen\nOla Nordmann\nSalgssjef, Eksempel AS\nTlf. +47 22 00 00 00\n"
    text = "\n\n".join([_PARAGRAPH * 2] * 4) + signature
    html = (
        "<html><head><meta charset='utf-8'></head><body>"
        + "".join(f"<p style='font-family:Arial'>{_PARAGRAPH * 2}</p>" for _ in range(4))
        + "<p>Med vennlig hilsen<br>Ola Nordmann<br><b>Salgssjef</b>, Eksempel AS<br>"
        + "Tlf. <a href='tel:+4722000000'>+47 22 00 00 00</a><br>"
        + "<a href='https://eksempel.no'>eksempel.no</a> | <a href='https://eksempel.no/personvern'>Personvern</a>"
        + "</p></body></html>"
    )
    headers = (
        "Received: from mail-out.eksempel.no (mail-out.eksempel.no [192.0.2.10])\r\n"
        "\tby mx.crm.example (Postfix) with ESMTPS id 4Xk2Lp0Qz9z9sWb\r\n"
        "\tfor <kari@kunde.example>; Tue, 14 May 2024 09:12:44 +0200 (CEST)\r\n"
        "Received: from [10.0.0.23] (unknown [198.51.100.7])\r\n"
        "\tby mail-out.eksempel.no (Postfix) with ESMTPSA id 1A2B3C4D5E\r\n"
        "\tfor <kari@kunde.example>; Tue, 14 May 2024 09:12:43 +0200 (CEST)\r\n"
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=eksempel.no; s=sel2024;\r\n"
        "\tt=1715670763; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
        "\th=From:To:Cc:Subject:Date:Message-ID:MIME-Version:Content-Type;\r\n"
        "\tb=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgaGFzIHRoZSByaWdodCBzaGFwZSBhbmQg\r\n"
        "\t bGVuZ3RoIGZvciB0aGUgYmVuY2htYXJrIHRvIGJlIHJlYWxpc3RpYyBhYm91dCBoZWFkZXIgc2l6ZXM=\r\n"
        "Authentication-Results: mx.crm.example; dkim=pass (2048-bit key) header.d=eksempel.no;\r\n"
        "\tspf=pass smtp.mailfrom=ola.nordmann@eksempel.no; dmarc=pass header.from=eksempel.no\r\n"
        "Message-ID: <a1b2c3d4-e5f6-7890-abcd-ef0123456789@eksempel.no>\r\n"
        "Date: Tue, 14 May 2024 09:12:43 +0200\r\n"
        "From: =?UTF-8?Q?Ola_Nordmann?= <ola.nordmann@eksempel.no>\r\n"
        'To: Kari Hansen <kari@kunde.example>, "Berg, Per" <per.berg@kunde.example>\r\n'
        "Cc: salg@eksempel.no\r\n"
        "Bcc: 7f3a9c2e1b5d4a60@bcc.crm.example\r\n"
        "Subject: =?UTF-8?Q?Tilbud_p=C3=A5_lisenser_=E2=80=93_tre_=C3=A5rs_avtale?=\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Language: nb-NO\r\n"
        "User-Agent: Mozilla Thunderbird\r\n"
        'Content-Type: multipart/alternative; boundary="------------b0undAry0123456789abcd"\r\n'
        "\r\n"
    )

    def qp(body: str) -> str:
        return quopri.encodestring(body.replace("\n", "\r\n").encode("utf-8")).decode("ascii")

    body = (
        "This is a multi-part message in MIME format.\r\n"
        "--------------b0undAry0123456789abcd\r\n"
        "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + qp(text)
        + "\r\n--------------b0undAry0123456789abcd\r\n"
        "Content-Type: text/html; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + qp(html)
        + "\r\n--------------b0undAry0123456789abcd--\r\n"
    )
    return (headers + body).encode("ascii")


def _batch_time(func: Callable[[], object], batch: int) -> float:
    # CPU time of this process: other work on a shared machine does not count against either side.
    start = time.process_time()
    for _ in range(batch):
        func()
    return (time.process_time() - start) / batch


def per_call(funcs: list[Callable[[], object]], seconds: float, rounds: int = 10) -> list[float]:
    """Seconds per call for each function: best of interleaved batches.

    Interleaving puts both under the same machine load; the minimum is the least noisy estimate on a
    shared machine.
    """
    batch = 1
    while _batch_time(funcs[0], batch) * batch < seconds / (rounds * len(funcs)):
        batch *= 2
    best = [float("inf")] * len(funcs)
    for _ in range(rounds):
        for index, func in enumerate(funcs):
            best[index] = min(best[index], _batch_time(func, batch))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0, help="rough time budget for the run")
    args = parser.parse_args()
    raw = sample_message()
    parsed = parse_message(raw)
    assert parsed.text_body and parsed.html_body and not parsed.defects, parsed.defects
    bare_parser = BytesParser(policy=compat32)
    modern_parser = BytesParser(policy=default)
    bare, ours, modern = per_call(
        [
            lambda: bare_parser.parsebytes(raw),
            lambda: parse_message(raw),
            lambda: modern_parser.parsebytes(raw),  # the alternative we did not take (DESIGN.md)
        ],
        args.seconds,
    )
    print(f"message: {len(raw)} bytes, multipart/alternative (text/plain + text/html, quoted-printable)")
    print(f"bare BytesParser(policy=compat32).parsebytes: {bare * 1e3:.3f} ms/message")
    print(f"parse_message:                                {ours * 1e3:.3f} ms/message")
    print(f"ratio parse_message / bare compat32 parse:    {ours / bare:.2f}")
    print(f"for reference, policy=default parsebytes:    {modern * 1e3:.3f} ms/message", end=" ")
    print(f"(ratio {modern / bare:.1f})")


if __name__ == "__main__":
    main()
