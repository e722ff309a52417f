"""Issue 8 "one vocabulary": the words are defined once (bccd.vocabulary) and the record-kind registry
(bccd.records) drives API routes, import order, search kinds and CLI choices. The database's CHECK
constraints (frozen in migrations) must say the same as the vocabulary."""

from __future__ import annotations

import argparse
import re
from typing import get_args

from sqlalchemy import CheckConstraint, Table

from bccd import vocabulary as v
from bccd.api.app import create_api
from bccd.api.context import ApiContext
from bccd.cli import build_parser
from bccd.importer import APPLY_ORDER
from bccd.linker import ReasonCode
from bccd.metrics import Metrics
from bccd.records import ITEM_CLI_NAMES, REGISTRY, record_type
from bccd.services.runtime import Database
from bccd.store.schema import companies, items, threads, users
from bccd.store.search import SEARCH_KINDS


def _check(table: Table, name: str) -> str:
    wanted = f"ck_{table.name}_{name}"  # the naming convention of bccd.store.schema
    (found,) = [c for c in table.constraints if isinstance(c, CheckConstraint) and c.name == wanted]
    return str(found.sqltext)


def _quoted(sql: str) -> tuple[str, ...]:
    return tuple(re.findall(r"'([^']*)'", sql))


def test_database_checks_say_what_the_vocabulary_says() -> None:
    assert _quoted(_check(companies, "sender_policy")) == v.SENDER_POLICIES
    assert _quoted(_check(companies, "sender_auth")) == v.SENDER_AUTH_MODES
    assert _quoted(_check(users, "role")) == v.ROLES
    assert _quoted(_check(threads, "visibility")) == v.VISIBILITIES
    assert _quoted(_check(items, "type")) == v.ITEM_KINDS
    status = _check(items, "status")
    for kind in v.ITEM_KINDS:
        (allowed,) = re.findall(rf"type = '{kind}' AND status IN \(([^)]*)\)", status)
        assert _quoted(allowed) == v.ITEM_STATUSES[kind], kind
        assert v.OPEN in v.ITEM_STATUSES[kind] and v.DELETED in v.ITEM_STATUSES[kind]


def test_reason_codes_and_rules_are_the_vocabulary() -> None:
    assert ReasonCode is v.ReasonCode
    assert set(get_args(v.DecisionRule)) <= set(v.RULE_IDS)
    assert set(v.RECORD_KINDS) == set(SEARCH_KINDS) == set(REGISTRY)


def test_registry_drives_api_routes() -> None:
    db = Database("sqlite+aiosqlite:////nonexistent/bccd.sqlite3")  # never connected
    paths = create_api(ApiContext(db=db, metrics=Metrics(), bcc_domain="b.test")).openapi()["paths"]
    for record in REGISTRY.values():
        path = f"/api/v1/{record.plural}/{{external_id}}"
        assert set(paths[path]) == {"put", "get", "delete"}, path
        assert "get" in paths[path + "/threads"]
        ok = paths[path]["put"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["$ref"].endswith("/" + record.output_model.__name__)
        link = f"/api/v1/threads/{{thread_id}}/{record.plural}/{{external_id}}"
        assert (link in paths) is (not record.is_item)  # persons/organizations are linked by hand (M3)


def test_registry_drives_cli_choices_and_import_order() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    link = sub.choices["link"]
    (type_arg,) = [a for a in link._actions if a.dest == "type"]
    assert tuple(type_arg.choices or ()) == ITEM_CLI_NAMES == v.ITEM_KINDS
    # References resolve: organizations before the persons who work there, persons before their items.
    assert APPLY_ORDER["organization"] < APPLY_ORDER["person"] < min(APPLY_ORDER[k] for k in v.ITEM_KINDS)
    assert record_type("deal").is_item and record_type("person").removable
