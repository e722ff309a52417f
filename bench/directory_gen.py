"""A deterministic CRM directory as import lines: organizations, persons, deals with participants.

Seeded: the same arguments always give the same bytes, so runs compare. Person i has the address
`carol{i}@c{i % orgs}.example` (the bench mail addresses persons by that pattern), works for organization
i % orgs, and is the contact of deal i (when there are that many deals); deal i's participants are two other
persons drawn from the seeded generator. About a third of the deals are closed.

    python -m bench.directory_gen --persons 1000000 --organizations 200000 --deals 1000000 > dir.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

STATUSES = ("open", "open", "won", "lost")


def person_address(i: int, organizations: int) -> str:
    return f"carol{i}@c{i % max(organizations, 1)}.example"


def lines(
    company: int | str, *, persons: int, organizations: int, deals: int, seed: int = 13
) -> Iterator[str]:
    rng = random.Random(seed)
    dumps = json.dumps
    for i in range(organizations):
        yield dumps({"kind": "organization", "company": company, "external_id": f"o{i}", "name": f"Org {i}"})
    for i in range(persons):
        yield dumps(
            {
                "kind": "person",
                "company": company,
                "external_id": f"p{i}",
                "name": f"Carol {i}",
                "emails": [person_address(i, organizations)],
                **({"organization": f"o{i % organizations}"} if organizations else {}),
            }
        )
    for i in range(deals):
        parts = sorted({f"p{rng.randrange(persons)}" for _ in range(2)}) if persons else []
        yield dumps(
            {
                "kind": "deal",
                "company": company,
                "external_id": f"d{i}",
                "title": f"Deal {i}",
                "person": f"p{i % persons}" if persons else None,
                "participants": parts,
                "status": STATUSES[rng.randrange(len(STATUSES))],
                "created_at": "2020-01-01T00:00:00Z",
            }
        )


def single_open_deal_persons(*, persons: int, organizations: int, deals: int, seed: int = 13) -> list[int]:
    """The persons whose only open deal (as contact or participant) is their own deal i: a mail from one
    of them links by L6. Replays `lines` without building JSON."""
    rng = random.Random(seed)
    open_deals: dict[int, int] = {}  # person -> open deals they are in
    own_open: set[int] = set()
    for i in range(deals):
        parts = {rng.randrange(persons) for _ in range(2)} if persons else set()
        status = STATUSES[rng.randrange(len(STATUSES))]
        if status != "open" or not persons:
            continue
        contact = i % persons
        for who in parts | {contact}:
            open_deals[who] = open_deals.get(who, 0) + 1
        if contact == i:
            own_open.add(i)
    return sorted(p for p in own_open if open_deals.get(p) == 1)


def write(path: Path, company: int | str, **sizes: int) -> int:
    """Write the directory to `path`; returns the number of lines."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for line in lines(company, **sizes):
            out.write(line + "\n")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--company", default="1")
    parser.add_argument("--persons", type=int, default=1000)
    parser.add_argument("--organizations", type=int, default=200)
    parser.add_argument("--deals", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    company: int | str = int(args.company) if args.company.isdigit() else args.company
    for line in lines(
        company, persons=args.persons, organizations=args.organizations, deals=args.deals, seed=args.seed
    ):
        sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
