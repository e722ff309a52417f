"""Property-based fuzzing of the whole API from its OpenAPI document (schemathesis): no 5xx, ever (T4).

Valid and invalid requests for every operation, with an admin's token; besides "no server error" the
responses must match the document (status codes, content types, bodies): the document is the contract.

Schemathesis drives the ASGI app in-process from its own event-loop thread, so this test is synchronous
and the database the app uses is created in, and closed from, that thread's loop (via the ASGI lifespan).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from bccd.api.app import create_api
from bccd.api.context import ApiContext
from bccd.app import BccdApp
from bccd.metrics import Metrics
from bccd.store.database import Database
from bccd.store.migrate import upgrade
from bccd.store.users import create_token
from tests.conftest import app_settings
from tests.helpers import add_item, add_org, add_person, make_mail, seed_world, send

# Per operation and mode: 10 with the "dev" hypothesis profile, 20 with "ci" (tests/conftest.py).
MAX_EXAMPLES = max(5, settings().max_examples // 5)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# The import body is JSON lines, declared as a string: send it the way text/plain is sent.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


class ClosingLifespan:
    """Closes the database on ASGI lifespan shutdown, inside the loop that opened its connections."""

    def __init__(self, app: ASGIApp, db: Database) -> None:
        self.app = app
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.db.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _seed(url: str) -> str:
    """A company with records and two real threads (through SMTP); returns an admin's token."""
    app = BccdApp(app_settings(url))
    await app.start()
    try:
        world = await seed_world(app.db)
        await add_org(app.db, world.company_id, "o1", "Client Corp")
        await add_person(app.db, world.company_id, "p1", "Carol", ["carol@client.test"], org="o1")
        await add_item(app.db, world.company_id, "deal", "A", person="p1")
        await add_item(app.db, world.company_id, "deal", "B", person="p1")
        for subject in ("one", "two"):
            assert (await send(app.smtp.port, [world.bcc], make_mail(subject=subject))).code == 250
        async with app.db.write() as conn:
            return await create_token(conn, world.admin.id)
    finally:
        await app.stop()


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClosingLifespan, str]]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "bccd.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    token = asyncio.run(_seed(url))
    db = Database(url)
    target = ClosingLifespan(create_api(ApiContext(db=db, metrics=Metrics(), bcc_domain="bcc.test")), db)
    yield target, token
    schemathesis_asgi.shutdown_lifespans()


def _fuzz(operation: Any, mode: GenerationMode, token: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(
    fuzz_target: tuple[ClosingLifespan, str], mode: GenerationMode, subtests: pytest.Subtests
) -> None:
    target, token = fuzz_target
    schema = schemathesis.openapi.from_asgi("/openapi.json", target)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) > 40
    for operation in operations:
        raw = operation.definition.raw
        if mode is GenerationMode.NEGATIVE and not (raw.get("parameters") or raw.get("requestBody")):
            continue  # nothing to get wrong: no parameters, no body
        with subtests.test(msg=f"{operation.method.upper()} {operation.path}"):
            _fuzz(operation, mode, token)
