"""SPEC F1–F4 end to end: the whole forward corpus (tests/forwards) through the real SMTP server.

Each fixture is delivered to the owner's Smart Bcc address; the stored thread must carry the original's
From/To/Cc as `original_*` participants (F2), the original subject without forward prefixes, and
negatives must add no original participants.
"""

from __future__ import annotations

from typing import Any

from bccd.mail.forwards import strip_forward_prefix
from bccd.mail.message import parse_message
from bccd.store.users import update_user
from tests.conftest import AppFactory
from tests.forwards.corpus import load_cases
from tests.helpers import BCC_DOMAIN, crlf, seed_world, send, set_policy, thread, threads_of

NEVER_LOGGED_DOMAINS = ("noreply.test",)


def _expected(pairs: list[list[str]], excluded: set[str]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for address, name in pairs:
        if address in excluded or address.endswith("@" + BCC_DOMAIN) or address in (a for a, _ in out):
            continue
        out.append((address, name))
    return out


def _role(t: dict[str, Any], role: str) -> list[tuple[str, str | None]]:
    return [(p["address"], p["name"]) for p in t["participants"] if p["role"] == role]


async def test_forward_corpus_through_smtp(make_app: AppFactory) -> None:
    cases = load_cases()
    assert len(cases) > 300
    raws = {case.file: crlf(case.path.read_bytes()) for case in cases}
    forwarders = sorted({a.address for raw in raws.values() for a in parse_message(raw).from_})
    app = await make_app()
    world = await seed_world(app.db)
    await set_policy(app.db, world.company_id, "any")
    async with app.db.write() as conn:
        # Every forwarder of the corpus is the owner (F2 applies only to the owner's own forwards).
        owner = await update_user(conn, world.owner.id, aliases=forwarders)
    excluded = set(owner.addresses)

    failures: list[str] = []
    for case in cases:
        result = await send(app.smtp.port, [world.bcc], raws[case.file])
        assert result.code == 250, (case.file, result)
        latest = (await threads_of(app.db, world.company_id, owner_id=owner.id))[0]
        t = await thread(app.db, latest["id"])
        forward = t["message"]["forward"]
        if case.category == "forward":
            assert case.expect is not None and case.expect["original"] is not None
            original = case.expect["original"]
            got = {role: _role(t, f"original_{role}") for role in ("from", "to", "cc")}
            want = {role: _expected(original[role], excluded) for role in ("from", "to", "cc")}
            if got != want:
                failures.append(f"{case.file}: participants {got} != {want}")
            if t["subject"] != strip_forward_prefix(original["subject"] or ""):
                failures.append(f"{case.file}: subject {t['subject']!r}")
            if not (forward and forward["understood"]):
                failures.append(f"{case.file}: forward not recorded: {forward}")
        elif case.category == "negative":
            originals = [p for p in t["participants"] if p["role"].startswith("original_")]
            if originals or forward is not None:
                failures.append(f"{case.file}: negative became a forward: {originals} {forward}")
        else:  # F4: understood as a forward, but unreadable: stored, linked by its headers, defect kept
            if forward != {"understood": False} or "forward_unparseable" not in t["message"]["defects"]:
                failures.append(f"{case.file}: unparseable forward stored as {forward}")
    assert failures == [], "\n".join(failures[:20])
    # One thread per distinct message: the newest thread's id counts them (ids grow from 1).
    newest = (await threads_of(app.db, world.company_id))[0]
    assert newest["id"] == len(set(raws.values()))
