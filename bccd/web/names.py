"""The CRM's names for the records a page mentions, looked up once per request through the services."""

from __future__ import annotations

from typing import Any

from bccd.errors import NotFound
from bccd.services import directory
from bccd.services.runtime import Database
from bccd.services.users import User
from bccd.web.reasons import CandidateInfo, explain

KIND_LABELS = {
    "deal": "Deal",
    "lead": "Lead",
    "project": "Project",
    "person": "Person",
    "organization": "Organization",
}
PLURALS = {
    "person": "persons",
    "organization": "organizations",
    "deal": "deals",
    "lead": "leads",
    "project": "projects",
}


def record_url(kind: str, external_id: str) -> str:
    from urllib.parse import quote

    return f"/{PLURALS[kind]}/{quote(external_id, safe='')}"


class Names:
    """A per-request cache of directory records (a page names the same contact many times)."""

    def __init__(self, db: Database, viewer: User) -> None:
        self.db = db
        self.viewer = viewer
        self._cache: dict[tuple[str, str], dict[str, Any] | None] = {}

    async def record(self, kind: str, external_id: str) -> dict[str, Any] | None:
        key = (kind, external_id)
        if key not in self._cache:
            try:
                self._cache[key] = await directory.read_record(self.db, kind, external_id, actor=self.viewer)
            except NotFound:
                self._cache[key] = None  # removed from the CRM since: show its id
        return self._cache[key]

    async def name(self, kind: str, external_id: str) -> str:
        found = await self.record(kind, external_id)
        if found is None:
            return f"{kind} {external_id}"
        return str(found.get("title") or found.get("name") or external_id)

    async def ref(self, kind: str, external_id: str) -> dict[str, str]:
        """What a template needs to show and link a record."""
        return {
            "kind": kind,
            "id": external_id,
            "name": await self.name(kind, external_id),
            "url": record_url(kind, external_id),
        }

    async def candidate(self, kind: str, external_id: str) -> CandidateInfo:
        found = await self.record(kind, external_id)
        title = await self.name(kind, external_id)
        person = None
        if found is not None and found.get("person"):
            person = await self.name("person", str(found["person"]))
        return CandidateInfo(kind, external_id, title, person)

    async def reason(self, thread: dict[str, Any]) -> str:
        """The thread's decision in words (bccd.web.reasons) with the names filled in."""
        decision = thread["decision"]
        infos = {}
        for c in decision.get("candidates", []):
            infos[(c["type"], c["id"])] = await self.candidate(c["type"], c["id"])
        persons = [await self.name("person", p) for p in thread.get("persons", [])]
        item = thread.get("item")
        item_name = None if item is None else await self.name(item["type"], item["id"])
        return explain(decision, infos, persons=persons, item=item_name)
