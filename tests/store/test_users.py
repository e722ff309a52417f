"""Companies, users, Smart Bcc local parts and API tokens (SPEC §2, T1, T2) — the same on both backends."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bccd.store.database import Database
from bccd.store.schema import api_tokens
from bccd.store.users import (
    Conflict,
    NotFound,
    company_addresses,
    create_company,
    create_token,
    create_user,
    get_company,
    get_user,
    list_users,
    rotate_address,
    update_company,
    update_user,
    user_by_smart_bcc_local,
    user_by_token,
)
from tests.store.factories import World


async def test_company_create_read_update(store_db: Database) -> None:
    async with store_db.write() as conn:
        created = await create_company(
            conn, "  Acme  ", never_log=["NoReply.Example", " ", "noreply.example"]
        )
    async with store_db.write() as conn:
        by_id = await get_company(conn, created.id)
        by_name = await get_company(conn, "Acme")
        by_text_id = await get_company(conn, str(created.id))
        updated = await update_company(
            conn, created.id, sender_policy="any", never_log=["@B.example", "a.example"]
        )
    assert created.name == "Acme" and created.sender_policy == "owner"
    assert by_id == by_name == by_text_id == created
    assert created.never_log == ("noreply.example",)
    assert updated.sender_policy == "any"
    # Domains are stored bare (a leading "@" dropped), lowercase; addresses normalized (issue 9).
    assert updated.never_log == ("a.example", "b.example")
    async with store_db.read() as conn:
        assert await get_company(conn, created.id) == updated


async def test_company_never_log_is_validated_and_normalized(store_db: Database) -> None:
    async with store_db.write() as conn:
        company = await create_company(conn, "Acme")
        updated = await update_company(
            conn,
            company.id,
            never_log=["Boss@Acme.TEST", "@Bücher.example", "news.example.", "", "boss@acme.test"],
            sender_auth="require",
        )
    assert updated.never_log == ("boss@acme.test", "news.example", "xn--bcher-kva.example")
    assert updated.sender_auth == "require" and company.sender_auth == "record"
    assert updated.created_at is not None and updated.created_at == company.created_at
    for bad in ("not a domain", "a@", "@", "x@y@z.example", "a b.example"):
        with pytest.raises(ValueError, match=r"never_log|not an email address"):
            async with store_db.write() as conn:
                await update_company(conn, company.id, never_log=[bad])
    with pytest.raises(ValueError, match="sender_auth"):
        async with store_db.write() as conn:
            await update_company(conn, company.id, sender_auth="strict")


@pytest.mark.parametrize(
    ("name", "policy"), [("", "owner"), ("   ", "owner"), ("x" * 201, "owner"), ("Acme", "everyone")]
)
async def test_company_bad_input_is_a_value_error(store_db: Database, name: str, policy: str) -> None:
    # On PostgreSQL an over-long name used to surface as a DataError from the driver (T4: clear errors).
    with pytest.raises(ValueError):
        async with store_db.write() as conn:
            await create_company(conn, name, sender_policy=policy)


async def test_unknown_company_is_not_found(store_db: Database) -> None:
    async with store_db.read() as conn:
        with pytest.raises(NotFound):
            await get_company(conn, 999)
        with pytest.raises(NotFound):
            await get_company(conn, "Nobody")


async def test_user_create_and_read(store_db: Database, world: World) -> None:
    async with store_db.write() as conn:
        user = await create_user(
            conn,
            world.company_id,
            email="Dave@ACME.test",
            name=" Dave ",
            aliases=["dave@home.test", "DAVE@acme.test", "Dave@Home.test"],
            autolink=False,
        )
    assert user.email == "dave@acme.test"
    assert user.name == "Dave"
    assert user.aliases == ("dave@home.test",)  # normalized, deduplicated, login removed
    assert user.addresses == {"dave@acme.test", "dave@home.test"}
    assert not user.autolink and not user.is_admin
    async with store_db.read() as conn:
        assert await get_user(conn, user.id) == user
        assert await get_user(conn, "DAVE@acme.test") == user
        assert await get_user(conn, str(user.id), company_id=world.company_id) == user
        with pytest.raises(NotFound):  # T1: another company's view of this user
            await get_user(conn, user.id, company_id=world.other_company_id)
        assert [u.email for u in await list_users(conn, world.company_id)] == [
            "alice@acme.test",
            "bob@acme.test",
            "carol@acme.test",
            "dave@acme.test",
        ]
        assert await company_addresses(conn, world.company_id) == {
            "alice@acme.test",
            "bob@acme.test",
            "carol@acme.test",
            "dave@acme.test",
            "dave@home.test",
        }


async def test_smart_bcc_local_is_random_lowercase_and_resolvable(store_db: Database, world: World) -> None:
    local = world.alice.smart_bcc_local
    # T2/§8: base32 of 80 random bits, lowercase; no two users share one.
    assert re.fullmatch(r"[a-z2-7]{16}", local)
    assert len({world.alice.smart_bcc_local, world.bob.smart_bcc_local, world.eve.smart_bcc_local}) == 3
    async with store_db.read() as conn:
        assert await user_by_smart_bcc_local(conn, local.upper()) == world.alice
        assert await user_by_smart_bcc_local(conn, "unknown") is None


async def test_rotating_the_address_refuses_the_old_one(store_db: Database, world: World) -> None:
    old = world.alice.smart_bcc_local
    async with store_db.write() as conn:
        rotated = await rotate_address(conn, world.alice.id)
    assert rotated.smart_bcc_local != old
    async with store_db.read() as conn:
        assert await user_by_smart_bcc_local(conn, old) is None
        assert await user_by_smart_bcc_local(conn, rotated.smart_bcc_local) == rotated


async def test_duplicate_login_is_a_conflict(store_db: Database, world: World) -> None:
    with pytest.raises(Conflict):
        async with store_db.write() as conn:
            await create_user(conn, world.other_company_id, email="ALICE@acme.test", name="Alice 2")


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("not-an-address", "X"),
        ("x@acme.test", " "),
        ("x@acme.test", "n" * 201),
        ("x" * 320 + "@acme.test", "X"),
    ],
)
async def test_user_bad_input_is_a_value_error(
    store_db: Database, world: World, email: str, name: str
) -> None:
    with pytest.raises(ValueError):
        async with store_db.write() as conn:
            await create_user(conn, world.company_id, email=email, name=name)


async def test_user_in_unknown_company_is_not_found(store_db: Database) -> None:
    with pytest.raises(NotFound):
        async with store_db.write() as conn:
            await create_user(conn, 12345, email="x@acme.test", name="X")


async def test_update_user(store_db: Database, world: World) -> None:
    async with store_db.write() as conn:
        user = await update_user(
            conn, world.bob.id, autolink=False, role="admin", aliases=["bob@home.test"], name="Robert"
        )
    assert (user.autolink, user.role, user.aliases, user.name) == (
        False,
        "admin",
        ("bob@home.test",),
        "Robert",
    )
    async with store_db.write() as conn:
        user = await update_user(conn, world.bob.id, aliases=[])
        with pytest.raises(ValueError):
            await update_user(conn, world.bob.id, role="owner")
    assert user.aliases == ()


async def test_tokens_are_shown_once_and_stored_hashed(store_db: Database, world: World) -> None:
    async with store_db.write() as conn:
        raw = await create_token(conn, world.alice.id)
        second = await create_token(conn, world.alice.id)
    assert raw.startswith("bccd_") and raw != second
    async with store_db.read() as conn:
        stored = [tuple(r) for r in await conn.execute(select(api_tokens.c.token_hash, api_tokens.c.prefix))]
        assert await user_by_token(conn, raw) == world.alice
        assert await user_by_token(conn, second) == world.alice
        assert await user_by_token(conn, raw + "x") is None
    assert len(stored) == 2
    assert all(raw not in h and len(h) == 64 for h, _ in stored)  # T2: only the sha256 is kept
    assert {p for _, p in stored} == {raw[:9], second[:9]}
