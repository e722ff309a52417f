"""Fixtures for sender authentication: a real DNS server on loopback and bccd's resolver pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bccd.auth.dns import AsyncDns
from bccd.config import DnsSettings
from tests.dnsserver import DnsServer


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer()
    yield server
    server.close()


def resolver_for(server: DnsServer, *, timeout: float = 2.0, budget: float = 5.0) -> AsyncDns:
    return AsyncDns(DnsSettings(servers=(server.address,), timeout=timeout, budget=budget))


@pytest.fixture
def resolver(dns_server: DnsServer) -> AsyncDns:
    return resolver_for(dns_server)
