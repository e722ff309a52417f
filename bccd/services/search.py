"""Search the company's directory by name, to pick what to link (SPEC M6)."""

from __future__ import annotations

from collections.abc import Iterable

from bccd.services.runtime import Database
from bccd.services.users import User
from bccd.store.search import MAX_QUERY_CHARS as MAX_QUERY_CHARS  # re-exported for interfaces
from bccd.store.search import MAX_RESULTS as MAX_RESULTS
from bccd.store.search import SEARCH_KINDS as SEARCH_KINDS
from bccd.store.search import SearchHit as SearchHit
from bccd.store.search import search_directory


async def search_records(
    db: Database, query: str, *, actor: User, kinds: Iterable[str] = SEARCH_KINDS, limit: int = 20
) -> list[SearchHit]:
    """Records of the actor's company whose name/title (or a person's email) contains `query`, best first."""
    async with db.read() as conn:
        return await search_directory(conn, actor.company_id, query, kinds=list(kinds), limit=limit)
