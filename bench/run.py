"""`make bench`: every issue-13 scenario in one table — bccd's figure, the no-op aiosmtpd sink's figure
from the same run, the ratio, the target, PASS/FAIL.

    python -m bench.run            # full: 1,000,000 persons + 200,000 organizations + 1,000,000 deals
    python -m bench.run --quick    # about a minute: 1,000 vs 20,000 persons

The directory is generated (bench.directory_gen, seeded). Scenarios not built yet are listed as NOT RUN, so
the table never reads as more complete than it is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench import big_messages, haraka_peer, import_stall, ingest, search_scale
from bench.import_speed import _pg_admin

Row = tuple[str, str, str, str, str, str]


def _sizes(persons: int) -> dict[str, int]:
    return {"persons": persons, "organizations": max(1, persons // 5), "deals": persons}


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def _pg_url() -> tuple[str, str] | None:
    name = f"bccd_bench_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception:
        return None
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


def run(quick: bool, backends: list[str]) -> tuple[list[Row], dict[str, Any]]:
    small, large = (1_000, 20_000) if quick else (1_000, 1_000_000)
    messages, clients = (400, 16) if quick else (3000, 16)
    raw: dict[str, Any] = {}
    rows: list[Row] = []
    mails = ingest.corpus(messages, small, small // 5)
    raw["sink"] = sink = ingest.sink(mails, clients)
    for backend in backends:
        for label, persons in (("small", small), ("large", large)):
            with tempfile.TemporaryDirectory() as tmp:
                if backend == "sqlite":
                    url, drop = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}", None
                else:
                    made = _pg_url()
                    if made is None:
                        break
                    url, drop = made
                try:
                    # `serve --workers 2` runs on SQLite's large directory, after the one-process run
                    workers = (1, 2) if backend == "sqlite" and label == "large" else (1,)
                    runs = ingest.bccd_runs(url, _sizes(persons), messages, clients, Path(tmp), workers)
                    raw[f"{backend}_{label}"] = runs[1]
                    if 2 in runs:
                        raw[f"{backend}_{label}_workers2"] = runs[2]
                finally:
                    if drop:
                        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)'))
        s, big = raw.get(f"{backend}_small"), raw.get(f"{backend}_large")
        if not s or not big:
            rows.append((f"{backend}: not run", "-", "-", "-", "-", "SKIP"))
            continue
        linked = min(s.get("linked_share", 0.0), big.get("linked_share", 0.0))
        rows.append(
            (
                f"{backend} bench mail linked by L6 (share of threads)",
                f"{linked:.3f}",
                "-",
                "-",
                "= 1.0 (else the figures measure a cheaper path)",
                _verdict(linked >= 0.999),
            )
        )
        r = s["msg_per_s"] / sink["msg_per_s"]
        rows.append(
            (
                f"{backend} ingest msg/s, {small:,} persons, C={clients}",
                f"{s['msg_per_s']}",
                f"{sink['msg_per_s']}",
                f"{r:.2f}",
                "≥ 0.6×",
                _verdict(r >= 0.6),
            )
        )
        flat = big["msg_per_s"] / s["msg_per_s"]
        rows.append(
            (
                f"{backend} ingest msg/s, {large:,} persons (vs {small:,})",
                f"{big['msg_per_s']}",
                f"{s['msg_per_s']}",
                f"{flat:.2f}",
                "≥ 0.9× (flat)",
                _verdict(flat >= 0.9),
            )
        )
        p99 = big["eod_p99_ms"] / sink["eod_p99_ms"]
        rows.append(
            (
                f"{backend} EOD→250 p99 ms, {large:,} persons",
                f"{big['eod_p99_ms']}",
                f"{sink['eod_p99_ms']}",
                f"{p99:.1f}",
                "≤ 3×",
                _verdict(p99 <= 3),
            )
        )
        if big["cpu_ms_per_msg"] is not None:
            rows.append(
                (
                    f"{backend} CPU ms/msg, {large:,} persons",
                    f"{big['cpu_ms_per_msg']}",
                    f"{sink['cpu_ms_per_msg']}",
                    f"{big['cpu_ms_per_msg'] / sink['cpu_ms_per_msg']:.1f}",
                    "≤ 1.5 ms",
                    _verdict(big["cpu_ms_per_msg"] <= 1.5),
                )
            )
        two = raw.get(f"{backend}_large_workers2")
        if two:
            r2 = two["msg_per_s"] / sink["msg_per_s"]
            rows.append(
                (
                    f"{backend} serve --workers 2 msg/s, {large:,} persons, C={clients}",
                    f"{two['msg_per_s']}",
                    f"{sink['msg_per_s']}",
                    f"{r2:.2f}",
                    "≥ 1.0×",
                    _verdict(r2 >= 1.0),
                )
            )
        rate = big["import_records_per_s"]
        rows.append(
            (
                f"{backend} import records/s ({large * 11 // 5:,} records)",
                f"{rate:,}",
                "-",
                "-",
                "≥ 50,000/s",
                _verdict(rate >= 50_000),
            )
        )
    stall = import_stall.run(20_000 if quick else 100_000, 4)
    raw["import_stall"] = stall
    quiet = stall["phases"]["quiet"]
    rows.append(
        (
            f"sqlite EOD→250 max ms during a {stall['records']:,}-record import",
            f"{stall['worst_eod_to_250_during_import_ms']}",
            f"{quiet.get('max_ms')} (no import)",
            "-",
            "< 1000 ms",
            stall["verdict"],
        )
    )
    big = big_messages.run(
        big_messages.parser().parse_args(["--messages", "300" if quick else "700", "--big-mb", "20"])
    )
    raw["big_messages"] = big
    rows.append(
        (
            "sqlite 4 KB p99 ms with 2 connections of 20 MB mail (vs without)",
            f"{big['with_big']['p99_ms']}",
            f"{big['baseline']['p99_ms']} (no big mail)",
            f"{big['p99_ratio']:.1f}",
            "≤ 3×",
            big["verdict"],
        )
    )
    rows.append(
        (
            "sqlite peak RSS MiB with 20 MB mail (vs without)",
            f"{big['with_big']['peak_rss_mib']:.0f}",
            f"{big['baseline']['peak_rss_mib']:.0f} (no big mail)",
            f"{big['with_big']['peak_rss_mib'] / big['baseline']['peak_rss_mib']:.1f}",
            "bounded (reported)",
            "n/a",
        )
    )
    peer = haraka_peer.run(mails, clients)
    raw["haraka"] = peer
    if peer is None:
        rows.append(("Haraka-with-fsync peer (needs node + npm)", "-", "-", "-", "-", "NOT RUN"))
    else:
        rows.append(
            (
                f"Haraka 3.3.4 + fsync plugin msg/s, C={clients} (the peer, not bccd)",
                f"{peer['msg_per_s']}",
                f"{sink['msg_per_s']}",
                f"{peer['msg_per_s'] / sink['msg_per_s']:.2f}",
                "reference",
                "n/a",
            )
        )
    found = search_scale.run(100_000 if quick else 1_000_000, queries=200 if quick else 300)
    raw["search"] = found
    for label, key in (("search ?q=", "search_p99_ms"), ("listing ?unlinked=true", "listing_p99_ms")):
        rows.append(
            (
                f"sqlite {label} p99 ms on {found['threads']:,} threads",
                f"{found[key]:.1f}",
                "-",
                f"{found[key] / found['target_ms']:.2f} of target",
                f"≤ {found['target_ms']:.0f} ms",
                _verdict(found[key] <= found["target_ms"]),
            )
        )
    return rows, raw


def table(rows: list[Row]) -> str:
    head: Row = ("scenario", "bccd", "baseline (same run)", "ratio", "target", "result")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(6)]

    def line(r: Row) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description="bccd benchmarks (issue 13)")
    parser.add_argument("--quick", action="store_true", help="about a minute: small directories")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--json", help="also write the raw figures to this file")
    args = parser.parse_args()
    rows, raw = run(args.quick, args.backends.split(","))
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=2))


if __name__ == "__main__":
    main()
