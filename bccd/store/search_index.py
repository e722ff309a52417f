"""Full-text search over threads (issue 9): the index kept with every thread, and the ranked query.

One document per thread: its subject, its participants' names and addresses, its attachments' names and
its text body (or the text of its HTML body). SQLite keeps it in an FTS5 table (`thread_search`, rowid =
thread id), PostgreSQL in a `tsvector` column with a GIN index (`thread_search.document`). Both are
written by `index_threads` inside the transaction that inserts the threads (bccd.store.thread_batch),
so a committed thread is always findable, and created by migration 0003, which also indexes the
threads that existed before it.

The words are cut and folded here, in Python, for both backends: letters and digits only, case-folded,
accents removed ("Tromsø" is found by "tromso"), so that one query finds the same threads on SQLite and
PostgreSQL (`simple` semantics: no stemming, any language). An address "anna@client.test" is the words
anna, client, test. Every query word must match (AND); a word ending in `*` matches as a prefix.
The thread's company is indexed too (a token no text can produce), so the index itself narrows a
query to the caller's company; visibility is then checked on the threads table, where it can change.
On PostgreSQL the document also holds its owner, whether it is shared, and the blocks of ids its id lies
in (migration 0011; triggers of 0011 and 0012 keep them equal to the threads row), so that a search reads
only the newest matches the caller may see (see Ranking); the threads table still has the last word on
visibility.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSQUERY
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.mail.forward_html import html_to_text
from bccd.store.schema import threads
from bccd.store.threads import MessageRow, ThreadDraft

TABLE: Final = "thread_search"
# Body text indexed per thread: bounds the work on the SMTP path and PostgreSQL's 1 MB tsvector limit.
MAX_BODY_CHARS: Final = 50_000
MAX_TERM_CHARS: Final = 64  # longer "words" are base64 or hashes, not something anyone searches for
MAX_QUERY_TERMS: Final = 16
# tsvector positions kept per word and field: enough for ts_rank to count repeats, small enough for
# PostgreSQL's per-lexeme limit of 256 positions.
_MAX_POSITIONS: Final = 8
_PG_MAX_POSITION: Final = 16_383

_WORD = re.compile(r"[^\W_]+")
_QUERY_WORD = re.compile(r"([^\W_]+)(\*?)")

# Fields, best first: subject, people, attachment names, body (PostgreSQL's A-D labels, which ts_rank weighs
# 1.0, 0.4, 0.2, 0.1; on SQLite the fields a match holds a word in score it, see _FTS_SCORE).
_FIELDS: Final = ("subject", "people", "attachments", "body")
_PG_WEIGHTS: Final = dict(zip(_FIELDS, "ABCD", strict=True))
_FTS_COLUMNS: Final = "{subject people attachments body}"


# Letters NFKD does not decompose, read as their base letters (so "tromso" finds "Tromsø").
_BASE_LETTER_PAIRS: Final = (
    ("ø", "o"),
    ("æ", "ae"),
    ("œ", "oe"),
    ("đ", "d"),
    ("ð", "d"),
    ("ł", "l"),
    ("ı", "i"),
    ("þ", "th"),
)
_HAS_BASE_LETTER = re.compile("[" + "".join(letter for letter, _ in _BASE_LETTER_PAIRS) + "]")


def _combining_class() -> re.Pattern[str]:
    """Every combining mark of the Basic Multilingual Plane, as one character class (built once)."""
    ranges: list[str] = []
    start = prev = -2
    for code in range(0x300, 0x10000):
        if unicodedata.combining(chr(code)):
            if code != prev + 1:
                if start >= 0:
                    ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
                start = code
            prev = code
    ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
    return re.compile("[" + "".join(ranges) + "]+")


_COMBINING = _combining_class()


def fold(text: str) -> str:
    """Case-folded, accents removed (NFKD without combining marks, plus ø→o, æ→ae, ł→l, …)."""
    text = text.casefold()
    if text.isascii():
        return text
    if _HAS_BASE_LETTER.search(text):
        for letter, base in _BASE_LETTER_PAIRS:  # str.replace per letter: translate() with a dict is slow
            if letter in text:
                text = text.replace(letter, base)
        if text.isascii():
            return text
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


# ASCII text (most of it, once folded) is cut by a translate() to spaces and a split(), at a fifth of the
# regex's cost; for ASCII, [^\W_] is exactly the letters and digits.
_ASCII_SEPARATORS = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})


def terms(text: str | None) -> list[str]:
    """The searchable words of a text, in order."""
    if not text:
        return []
    folded = fold(text)
    words = folded.translate(_ASCII_SEPARATORS).split() if folded.isascii() else _WORD.findall(folded)
    if words and max(map(len, words)) > MAX_TERM_CHARS:
        return [w for w in words if len(w) <= MAX_TERM_CHARS]
    return words


@dataclass(frozen=True, slots=True)
class ThreadDocument:
    thread_id: int
    company_id: int
    owner_id: int
    subject: str
    people: list[tuple[str, str | None]]  # (address, display name)
    attachment_names: list[str]
    body: str | None
    html: str | None = None  # used when there is no text body
    shared: bool = False  # the thread's visibility is "shared" (new threads are private)

    def fields(self) -> dict[str, list[str]]:
        body = self.body
        if body is None and self.html:
            body = html_to_text(self.html[: MAX_BODY_CHARS * 4])
        return {
            "subject": terms(self.subject),
            "people": [w for address, name in self.people for w in (*terms(name), *terms(address))],
            "attachments": [w for name in self.attachment_names for w in terms(name)],
            "body": terms((body or "")[:MAX_BODY_CHARS]),
        }


def _scope(company_id: int) -> str:
    # SQLite: its own column. PostgreSQL: a lexeme with ":" in it, which terms() never yields.
    return f"c{company_id}"


def _pg_scope(company_id: int) -> str:
    return f"c:{company_id}"


# PostgreSQL: lexemes with ":" in them (terms() never yields one) say who may read a thread and where its id
# lies, so that one GIN scan finds the visible matches of a range of ids (issue 13 target 5, see Ranking):
# o:OWNER (the owner's threads), s:COMPANY (the company's shared threads) and, per BUCKET_SHIFTS, bS:N
# for the aligned block of 2**S ids that holds the thread's id (N = id >> S). The owner and shared lexemes
# follow the threads row: a trigger rewrites them when its visibility or owner changes (migration 0011), and
# another adds them to a document inserted without them (migration 0012: a node of a release before 0011,
# during a rolling upgrade). Both migrations hold their own frozen copy of this as SQL; a change here needs
# a new migration, and tests/store/test_search_access_migrations.py fails until the two agree.
BUCKET_SHIFTS: Final = (10, 12, 14, 16, 18)


def _pg_owner(owner_id: int) -> str:
    return f"o:{owner_id}"


def _pg_shared(company_id: int) -> str:
    return f"s:{company_id}"


def _pg_bucket(shift: int, block: int) -> str:
    return f"b{shift}:{block}"


def _pg_access(doc: ThreadDocument) -> list[str]:
    """The document's lexemes that are not words: its owner, shared or not, and its id's blocks, each block
    also as the owner's block (bS:NoOWNER) and, when shared, the company's shared block (bS:NsCOMPANY)."""
    out = [_pg_owner(doc.owner_id)]
    if doc.shared:
        out.append(_pg_shared(doc.company_id))
    for shift in BUCKET_SHIFTS:
        block = _pg_bucket(shift, doc.thread_id >> shift)
        out.extend((block, f"{block}o{doc.owner_id}"))
        if doc.shared:
            out.append(f"{block}s{doc.company_id}")
    return out


def _tsvector(doc: ThreadDocument) -> str:
    """The document as a tsvector literal: our own words, weighted by field, with positions."""
    positions: dict[str, list[str]] = {}
    position = 0
    for name, words in doc.fields().items():
        weight = _PG_WEIGHTS[name]
        seen: dict[str, int] = {}
        for word in words:
            if position < _PG_MAX_POSITION:
                position += 1
            count = seen.get(word, 0)
            if count < _MAX_POSITIONS:
                seen[word] = count + 1
                positions.setdefault(word, []).append(f"{position}{weight}")
    lexemes = [f"'{_pg_scope(doc.company_id)}':1D", *(f"'{lexeme}'" for lexeme in _pg_access(doc))]
    lexemes.extend(f"'{word}':{','.join(marks[:255])}" for word, marks in positions.items())
    return " ".join(lexemes)


def _fts_row(doc: ThreadDocument) -> dict[str, Any]:
    fields = doc.fields()
    return {
        "id": doc.thread_id,
        "scope": _scope(doc.company_id),
        **{k: " ".join(v) for k, v in fields.items()},
    }


_FTS_INSERT = text(
    "INSERT INTO thread_search (rowid, scope, subject, people, attachments, body) "
    "VALUES (:id, :scope, :subject, :people, :attachments, :body)"
)
_PG_INSERT = text(
    "INSERT INTO thread_search (thread_id, document) VALUES (:id, CAST(:document AS tsvector)) "
    "ON CONFLICT (thread_id) DO UPDATE SET document = EXCLUDED.document"
)


def _statement(dialect: str, docs: Sequence[ThreadDocument]) -> tuple[Any, list[dict[str, Any]]]:
    if dialect == "sqlite":
        return _FTS_INSERT, [_fts_row(d) for d in docs]
    return _PG_INSERT, [{"id": d.thread_id, "document": _tsvector(d)} for d in docs]


async def index_threads(conn: AsyncConnection, docs: Sequence[ThreadDocument]) -> None:
    """Index new threads, in the caller's transaction (the one that inserts them)."""
    if docs:
        stmt, rows = _statement(conn.dialect.name, docs)
        await conn.execute(stmt, rows)


async def index_new_threads(
    conn: AsyncConnection, new: Sequence[tuple[int, ThreadDraft, MessageRow]]
) -> None:
    """The hook of bccd.store.thread_batch: index threads it just inserted, with their message."""
    docs = [
        ThreadDocument(
            tid,
            draft.company_id,
            draft.owner_id,
            draft.subject,
            [(p.address, p.name) for p in draft.participants],
            [a.get("name") or "" for a in row.values.get("attachments") or []],
            row.values.get("text_body"),
            row.values.get("html_body"),
        )
        for tid, draft, row in new
    ]
    await index_threads(conn, docs)


def index_threads_sync(conn: Connection, docs: Sequence[ThreadDocument]) -> None:
    """The same for a synchronous connection (migrations, bulk loads)."""
    if docs:
        stmt, rows = _statement(conn.dialect.name, docs)
        conn.execute(stmt, rows)


# -- querying ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed query: the words every result must hold, each maybe a prefix."""

    words: tuple[tuple[str, bool], ...]  # (word, is_prefix)

    @classmethod
    def parse(cls, query: str) -> SearchQuery:
        found: list[tuple[str, bool]] = []
        for word, star in _QUERY_WORD.findall(fold(query)):
            if len(word) <= MAX_TERM_CHARS and (word, bool(star)) not in found:
                found.append((word, bool(star)))
        return cls(tuple(found[:MAX_QUERY_TERMS]))

    def __bool__(self) -> bool:
        return bool(self.words)

    def fts5(self, company_id: int | None = None) -> str:
        """The query as an FTS5 expression: every word, and the company's scope when `company_id` is given."""
        parts = [] if company_id is None else [f'scope : "{_scope(company_id)}"']
        parts.extend(f'{_FTS_COLUMNS} : "{word}"' + (" *" if prefix else "") for word, prefix in self.words)
        return " AND ".join(parts)

    def tsquery(self, company_id: int | None = None) -> str:
        """The query as a tsquery literal; with the company's lexeme when `company_id` is given."""
        parts = [] if company_id is None else [f"'{_pg_scope(company_id)}'"]
        parts.extend(f"'{word}'" + (":*" if prefix else "") for word, prefix in self.words)
        return " & ".join(parts)


# A search ranks the newest SEARCH_WINDOW matches the caller may see (all filters applied), not every
# match (issue 13 target 5): ranking a word that half of a million threads hold cost the whole doclist
# (FTS5's bm25 counts every match of every phrase, the company's scope phrase included; ts_rank reads each
# match's document), while the newest matches come off the index in id order and stop at the window.
# Matches older than the window follow it, newest first, so paging still reaches every match.
SEARCH_WINDOW: Final = 1000
# Whether the company's scope narrows the full-text query, or the words alone do and the company is checked
# on the threads row: ANDing the scope (a posting list as long as the company's threads) cost 5-20x the
# word alone on FTS5 at 1M threads of one company (and the GIN scan several ms on PostgreSQL), while for a
# company with a small share of the index the words alone would walk every other company's matches. The
# newest RECENT_THREADS threads say which: the words alone when the company holds a quarter of them or more.
RECENT_THREADS: Final = 4096

# SQLite: a match's score is which fields hold a query word — subject 4, people 2, attachment names 1
# (the body adds nothing: most matches hold the word there). The index stores each field as its words
# (terms()) joined by spaces, so "holds the word" is a search for " word " in " field " (" word" for a
# prefix), on the window's rows only. Ties: newest first. The fields are read from FTS5's content table
# (`thread_search_content`: id = rowid, c0... = the columns in the order SQLITE_DDL declares them), a
# plain rowid table, at half the cost of a rowid lookup through the FTS5 table for each window row.
_SCORED_FIELDS: Final = (("subject", 4), ("people", 2), ("attachments", 1))
_FTS_CONTENT: Final = TABLE + "_content"


class SearchScope(Protocol):
    """Whose search it is (bccd.store.thread_views.ThreadFilter is one)."""

    @property
    def company_id(self) -> int: ...
    @property
    def owner_id(self) -> int | None: ...
    @property
    def viewer_id(self) -> int | None: ...
    @property
    def viewer_is_admin(self) -> bool: ...


# PostgreSQL finds the window by probing ranges of ids, newest first: one GIN scan per range for the query's
# words AND the caller's access (o:/s:/c: lexemes) AND the range's id blocks (bS:N lexemes, see
# BUCKET_SHIFTS), so that only the range's visible matches are read from the table (before, a regular
# user's common word read ~10,000 documents and threads rows for its 1,000 visible ones, and a middling
# word every match's rows, visible or not). A range costs GIN about its size in ids (0.07 us an id at 1M
# threads, more with more blocks in its cover), a match read from the table ~3.5 us. The first range is
# the newest FIRST_SPAN ids; each next one is sized from the matches per id found so far (2x to 8x the
# last: a small first range misjudges the rate), until the window is full or the ids run out. After each
# range the rest of the ids may instead be probed at once without blocks (GIN reads the words' posting
# lists alone, and every match below is read from the table): that is chosen when it is expected to cost
# less than the ranges of blocks still needed (wide_is_cheaper). Ranges start and end on a multiple of the
# smallest block.
FIRST_SPAN: Final = 2048
_BLOCK: Final = 1 << BUCKET_SHIFTS[0]
BLOCK_US_PER_ID: Final = 0.07  # GIN's cost of a range's block lexemes, per id in the range (1M threads)
ROW_US_PER_MATCH: Final = 3.5  # a match read from thread_search and checked against threads


def wide_is_cheaper(per_id: float, below: int, rest: int) -> bool:
    """Whether probing all `below` ids left at once (no blocks) is expected to cost less than ranges of
    blocks for the `rest` matches still wanted, at `per_id` matches per id (seen so far)."""
    matches_below = per_id * below
    if matches_below <= 2 * rest:
        return True  # about every match left is wanted: blocks would only add their own cost
    blocks = BLOCK_US_PER_ID * min(below, rest / per_id) + ROW_US_PER_MATCH * rest
    return ROW_US_PER_MATCH * matches_below <= blocks


def _cover(lo: int, hi: int) -> list[str]:
    """The id-block lexemes that cover exactly the ids lo..hi-1 (both multiples of the smallest block)."""
    out = []
    while lo < hi:
        shift = next(s for s in reversed(BUCKET_SHIFTS) if lo % (1 << s) == 0 and lo + (1 << s) <= hi)
        out.append(_pg_bucket(shift, lo >> shift))
        lo += 1 << shift
    return out


class Ranking:
    """How a search narrows and orders the threads a listing's SELECT (its WHERE: the filters) finds.

    `window_ids`: the ids of the newest `window` visible matches, newest first. `best_first`: a page of
    those ids, best first (then newest). `older`: the matches older than a thread id, newest first (what
    follows a full window).
    """

    def __init__(self, dialect: str, query: SearchQuery, scope: SearchScope) -> None:
        self._sqlite = dialect == "sqlite"
        self._query = query
        self._scope = scope
        self._company_id = scope.company_id
        self.window = SEARCH_WINDOW
        self._scoped = True  # until window_ids has looked (see RECENT_THREADS; SQLite)
        self.probes = 0  # PostgreSQL: how many ranges window_ids probed (tests, benchmarks)

    def _pg_access(self) -> str:
        """The tsquery of the threads the scope may read (its company's; a regular user's own or shared)."""
        scope = self._scope
        company = scope.company_id
        parts = []
        if scope.viewer_id is not None and not scope.viewer_is_admin:
            parts.append(f"( '{_pg_owner(scope.viewer_id)}' | '{_pg_shared(company)}' )")
        if scope.owner_id is not None:
            parts.append(f"'{_pg_owner(scope.owner_id)}'")
        if not parts and self._scoped:  # an owner's lexemes are in the owner's company already
            parts.append(f"'{_pg_scope(company)}'")
        return " & ".join(parts)

    def _pg_tsquery(self, blocks: list[str] | None = None) -> str:
        """The words AND the scope's access, within the id blocks `blocks` when given: a regular user's
        own and shared blocks, an owner's blocks, or (an admin's) the blocks themselves."""
        scope = self._scope
        parts = [self._query.tsquery()]
        if blocks is None:
            access = self._pg_access()
            if access:
                parts.append(access)
            return " & ".join(parts)
        company, viewer = scope.company_id, scope.viewer_id
        regular = viewer is not None and not scope.viewer_is_admin
        if scope.owner_id is not None:
            ors = [f"'{b}o{scope.owner_id}'" for b in blocks]
            if regular:
                parts.append(f"( '{_pg_owner(viewer or 0)}' | '{_pg_shared(company)}' )")
        elif regular:
            ors = [f"'{b}o{viewer}' | '{b}s{company}'" for b in blocks]
        else:
            ors = [f"'{b}'" for b in blocks]
            if self._scoped:
                parts.append(f"'{_pg_scope(company)}'")
        parts.append("( " + " | ".join(ors) + " )")
        return " & ".join(parts)

    def _match(self, blocks: list[str] | None = None) -> tuple[Any, Any]:
        """(the index's id column, the full-text condition): SQLite's scoped to the company or on the words
        alone; PostgreSQL's the words, the scope's access and, when given, the id blocks of a range."""
        if self._sqlite:
            company = self._company_id if self._scoped else None
            key = table(TABLE, column("rowid")).c.rowid
            fts = self._query.fts5(company)
            return key, literal_column(TABLE).op("MATCH")(bindparam("thread_search_q", fts))
        docs = table(TABLE, column("thread_id"), column("document"))
        tsq = cast(bindparam("thread_search_q", self._pg_tsquery(blocks)), TSQUERY)
        return docs.c.thread_id, docs.c.document.op("@@")(tsq)

    def _matches(
        self, stmt: Select[Any], *, below: int | None = None, blocks: list[str] | None = None
    ) -> Any:
        """The visible matches, newest first (a SELECT of `id`)."""
        key, match = self._match(blocks)
        found = select(key.label("id")).select_from(key.table.join(threads, threads.c.id == key)).where(match)
        if stmt.whereclause is not None:
            found = found.where(stmt.whereclause)
        if below is not None:
            found = found.where(key < below)
        return found.order_by(key.desc())

    async def _look(self, conn: AsyncConnection) -> int | None:
        """The newest thread id (None: no threads), and whether the company's lexeme narrows the query
        (`_scoped`, see RECENT_THREADS)."""
        newest = (await conn.execute(select(func.max(threads.c.id)))).scalar()
        if newest is None:
            return None
        recent = select(func.count()).where(
            threads.c.company_id == self._company_id, threads.c.id > int(newest) - RECENT_THREADS
        )
        held = int((await conn.execute(recent)).scalar_one())
        self._scoped = held * 4 < min(RECENT_THREADS, int(newest))
        return int(newest)

    async def window_ids(self, conn: AsyncConnection, stmt: Select[Any]) -> list[int]:
        if not self._sqlite:
            return await self._pg_window_ids(conn, stmt)
        if await self._look(conn) is None:
            return []
        # One row: the ids as one JSON array (a thousand rows through the driver and the result machinery
        # cost more than the query).
        window = self._matches(stmt).limit(self.window).subquery("window")
        found = (await conn.execute(select(func.json_group_array(window.c.id)))).scalar()
        return sorted((int(i) for i in json.loads(found or "[]")), reverse=True)

    async def _pg_window_ids(self, conn: AsyncConnection, stmt: Select[Any]) -> list[int]:
        # Planned for these words (a plan cached for the statement's parameters in general walked the whole
        # index for a rare word: 1.4 s at 1M threads), in this process (parallel workers cost more to start
        # than a LIMIT 1000 saves).
        # One round trip for these and what _look asks.
        newest_id = select(func.max(threads.c.id)).scalar_subquery()
        recent = select(func.count()).where(
            threads.c.company_id == self._company_id, threads.c.id > newest_id - RECENT_THREADS
        )
        row = (
            await conn.execute(
                select(
                    func.set_config("plan_cache_mode", "force_custom_plan", True),
                    func.set_config("max_parallel_workers_per_gather", "0", True),
                    newest_id,
                    recent.scalar_subquery(),
                )
            )
        ).one()
        if row[2] is None:
            return []
        newest, held = int(row[2]), int(row[3])
        self._scoped = held * 4 < min(RECENT_THREADS, newest)
        hi = -(-(newest + 1) // _BLOCK) * _BLOCK
        span, found = FIRST_SPAN, list[int]()
        while hi > 0 and len(found) < self.window:
            lo = max(0, (hi - span) // _BLOCK * _BLOCK)
            need = self.window - len(found)
            ids = await self._pg_probe(conn, stmt, lo, hi, newest, need)
            self.probes += 1
            found.extend(ids)
            if len(ids) < need:
                rest, per_id = need - len(ids), len(ids) / (hi - lo)
                # Probe all the ids left at once (lo = 0) when that costs less than more ranges.
                wide = wide_is_cheaper(per_id, lo, rest)
                span = lo if wide else int(min(8 * (hi - lo), max(2 * (hi - lo), rest / per_id * 1.25)))
            hi = lo
        return found

    async def _pg_probe(
        self, conn: AsyncConnection, stmt: Select[Any], lo: int, hi: int, newest: int, limit: int
    ) -> list[int]:
        """The newest `limit` visible matches with ids in lo..hi-1, newest first. The index's matches are
        one array that the threads' filter reads by primary key (a join let the planner walk every thread
        of the company to merge with a few matches); down to id 0, without blocks (see _pg_window_ids)."""
        docs = table(TABLE, column("thread_id"), column("document"))
        tsq = self._pg_tsquery(None if lo == 0 else _cover(lo, hi))
        candidates = select(docs.c.thread_id).where(
            docs.c.document.op("@@")(cast(bindparam("thread_search_q", tsq), TSQUERY))
        )
        if lo == 0 and hi <= newest:
            candidates = candidates.where(docs.c.thread_id < hi)
        found = select(threads.c.id).where(threads.c.id == func.any(func.array(candidates.scalar_subquery())))
        if stmt.whereclause is not None:
            found = found.where(stmt.whereclause)
        # One row: the ids as one PostgreSQL array (a thousand rows through the driver and the result
        # machinery cost more than the query).
        probe = found.order_by(threads.c.id.desc()).limit(limit).subquery("window")
        ids = (await conn.execute(select(func.array_agg(probe.c.id)))).scalar()
        return sorted((int(i) for i in ids or ()), reverse=True)

    async def best_first(self, conn: AsyncConnection, ids: list[int], offset: int, limit: int) -> list[int]:
        """`limit` of the window's `ids` from `offset`, best match first, then newest."""
        if not ids:
            return []
        score: Any
        if self._sqlite:
            fields = [f"c{_FTS_FIELDS.index(f)}" for f, _ in _SCORED_FIELDS]
            content = table(_FTS_CONTENT, column("id"), *(column(f) for f in fields))
            key = content.c.id
            score = sum(
                (
                    case((or_(*self._holds(content.c[f])), weight), else_=0)
                    for f, (_, weight) in zip(fields, _SCORED_FIELDS, strict=True)
                ),
                start=literal(0),
            )
        else:
            # Ranked on the words alone: ts_rank weighs how close the query's lexemes sit, and the
            # company lexeme's place in the document says nothing about relevance.
            docs = table(TABLE, column("thread_id"), column("document"))
            key = docs.c.thread_id
            words = cast(bindparam("thread_search_words", self._query.tsquery()), TSQUERY)
            score = func.ts_rank(docs.c.document, words)
        page = select(key).where(self._among(key, ids)).order_by(score.desc(), key.desc())
        return [int(r[0]) for r in await conn.execute(page.offset(offset).limit(limit))]

    def _among(self, key: Any, ids: list[int]) -> ColumnElement[bool]:
        """`key` is one of `ids`, bound as one value (1,000 bound parameters cost more than the query)."""
        if self._sqlite:
            listed: Select[Any] = select(column("value")).select_from(
                func.json_each(bindparam("ids", json.dumps(ids)))
            )
            return key.in_(listed.scalar_subquery())  # type: ignore[no-any-return]
        return key == func.any(bindparam("ids", ids, type_=ARRAY(BigInteger)))  # type: ignore[no-any-return]

    def _holds(self, field: Any) -> list[ColumnElement[bool]]:
        """SQLite: one condition per query word, true when the stored field (words joined by " ") holds it."""
        out = []
        for word, prefix in self._query.words:
            if prefix:
                out.append(func.instr(literal(" ") + field, literal(" " + word)) > 0)
            else:
                out.append(func.instr(literal(" ") + field + literal(" "), literal(f" {word} ")) > 0)
        return out

    def older(self, stmt: Select[Any], below: int) -> Select[Any]:
        found = self._matches(stmt, below=below).subquery("older")
        return stmt.join(found, found.c.id == threads.c.id).order_by(threads.c.id.desc())


def ranker(dialect: str, query: SearchQuery, scope: SearchScope) -> Ranking:
    """The ranking of `query`'s matches that `scope` may see, on this backend (see Ranking)."""
    return Ranking(dialect, query, scope)


# -- schema and backfill (migration 0003) ----------------------------------------------------------------

_FTS_FIELDS: Final = ("scope", "subject", "people", "attachments", "body")  # the FTS5 columns, in order
SQLITE_DDL: Final = (
    "CREATE VIRTUAL TABLE thread_search USING fts5("
    f"{', '.join(_FTS_FIELDS)}, tokenize = 'unicode61 remove_diacritics 0')",
    # FTS5 tables know no foreign keys: a deleted thread (company or user removed) leaves with this.
    "CREATE TRIGGER thread_search_delete AFTER DELETE ON threads BEGIN "
    "DELETE FROM thread_search WHERE rowid = old.id; END",
)
POSTGRES_DDL: Final = (
    "CREATE TABLE thread_search (thread_id BIGINT PRIMARY KEY REFERENCES threads (id) ON DELETE CASCADE,"
    " document TSVECTOR NOT NULL)",
    "CREATE INDEX ix_thread_search_document ON thread_search USING GIN (document)",
)


SQLITE_DROP: Final = ("DROP TRIGGER IF EXISTS thread_search_delete", "DROP TABLE IF EXISTS thread_search")
POSTGRES_DROP: Final = ("DROP TABLE IF EXISTS thread_search",)


def is_index_table(name: str | None) -> bool:
    """Tables of the search index (FTS5 makes shadow tables), which schema.py's metadata leaves out."""
    return bool(name) and str(name).startswith(TABLE)


def include_in_schema_compare(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic `include_name` hook: compare everything but the search index's tables."""
    return not (type_ == "table" and is_index_table(name))


_BACKFILL_BATCH = 1000


def _documents(conn: Connection, after_id: int) -> list[ThreadDocument]:
    rows = conn.execute(
        text(
            "SELECT t.id, t.company_id, t.owner_id, t.visibility, t.subject, m.text_body, m.html_body, "
            "m.attachments "
            "FROM threads t JOIN messages m ON m.id = t.message_pk "
            "WHERE t.id > :after ORDER BY t.id LIMIT :n"
        ),
        {"after": after_id, "n": _BACKFILL_BATCH},
    ).all()
    if not rows:
        return []
    ids = [int(r[0]) for r in rows]
    people: dict[int, list[tuple[str, str | None]]] = {i: [] for i in ids}
    found = conn.execute(
        text(
            "SELECT thread_id, address, name FROM thread_participants "
            "WHERE thread_id >= :lo AND thread_id <= :hi ORDER BY id"
        ),
        {"lo": ids[0], "hi": ids[-1]},
    )
    for tid, address, name in found:
        if int(tid) in people:
            people[int(tid)].append((address, name))
    docs = []
    for tid, company_id, owner_id, visibility, subject, body, html, attachments in rows:
        if isinstance(attachments, str):  # SQLite hands JSON back as text through text()
            attachments = json.loads(attachments)
        names = [a.get("name") or "" for a in attachments or []]
        docs.append(
            ThreadDocument(
                int(tid),
                int(company_id),
                int(owner_id),
                subject,
                people[int(tid)],
                names,
                body,
                html,
                shared=visibility == "shared",
            )
        )
    return docs


def backfill(conn: Connection) -> int:
    """Index every thread that exists (migration 0003); returns how many."""
    total = 0
    after = 0
    while True:
        docs = _documents(conn, after)
        if not docs:
            return total
        index_threads_sync(conn, docs)
        total += len(docs)
        after = docs[-1].thread_id
