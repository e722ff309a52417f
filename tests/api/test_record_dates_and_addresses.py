"""Persons and organizations accept `created_at` (issue 9: a CRM sync carries it), and typed addresses are
checked with email-validator (issue 12 item 19) while mail headers stay lenient."""

from __future__ import annotations

import json

import pytest

from bccd.typed_addresses import check_typed_address
from tests.api.support import Api


@pytest.mark.parametrize("kind", ["organizations", "persons"])
async def test_person_and_organization_accept_created_at(api: Api, kind: str) -> None:
    body = {"name": "Dated", "created_at": "2019-05-01T08:00:00+02:00"}
    created = await api.admin.put(f"/api/v1/{kind}/d1", json=body)
    assert created.status_code == 201, created.text
    assert (await api.admin.get(f"/api/v1/{kind}/d1")).json()["created_at"].startswith("2019-05-01T06:00:00")
    # An update that carries it moves it; one that does not keeps it.
    body["created_at"] = "2018-01-01T00:00:00Z"
    assert (await api.admin.put(f"/api/v1/{kind}/d1", json=body)).status_code == 200
    del body["created_at"]
    assert (await api.admin.put(f"/api/v1/{kind}/d1", json=body)).status_code == 200
    assert (await api.admin.get(f"/api/v1/{kind}/d1")).json()["created_at"].startswith("2018-01-01T00:00:00")
    bad = await api.admin.put(f"/api/v1/{kind}/d2", json={"name": "X", "created_at": "0001-01-01T00:00:00Z"})
    assert bad.status_code == 422


async def test_import_of_persons_with_created_at(api: Api) -> None:
    lines = [
        {"kind": "organization", "external_id": "o9", "name": "Org", "created_at": "2020-02-02T00:00:00Z"},
        {"kind": "person", "external_id": "p9", "name": "P", "created_at": "2020-03-03T00:00:00Z"},
    ]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    resp = await api.admin.post("/api/v1/import", content=body)
    assert resp.status_code == 200, resp.text
    assert (await api.admin.get("/api/v1/persons/p9")).json()["created_at"].startswith("2020-03-03")


def test_typed_addresses_are_checked_strictly() -> None:
    assert check_typed_address(" Carol@Client.TEST ") == "carol@client.test"
    assert check_typed_address("it@corp.local") == "it@corp.local"  # intranet domains are real in CRMs
    assert check_typed_address("jörg@bücher.example") == "jörg@xn--bcher-kva.example"
    for bad in ("carol@", "two@@signs.example", "space in@x.example", "a..b@x.example", "x@host.invalid"):
        with pytest.raises(ValueError, match="not an email address"):
            check_typed_address(bad)


async def test_directory_and_user_emails_refuse_what_email_validator_refuses(api: Api) -> None:
    resp = await api.admin.put("/api/v1/persons/p1", json={"name": "P", "emails": ["a..b@x.example"]})
    assert resp.status_code == 422 and "emails" in resp.text
    resp = await api.admin.post(
        "/api/v1/users", json={"email": "dots..here@acme.example", "name": "Dot", "admin": False}
    )
    assert resp.status_code == 422, resp.text
