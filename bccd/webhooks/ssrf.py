"""The SSRF guard: a webhook may only reach public addresses unless `[webhooks] allow_private = true`.

Checked when an endpoint is registered or changed (its URL) and again at each delivery, where the request
then goes to the address that was checked (no second lookup an attacker's DNS could answer differently).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from bccd.errors import BccdError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeEndpoint(BccdError, ValueError):
    """The URL is not http(s), or its host resolves to an address webhooks may not reach."""


def check_url(url: str) -> tuple[str, int]:
    """The (host, port) of an acceptable http(s) URL; UnsafeEndpoint otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeEndpoint("webhook URL must be http:// or https://")
    if not parts.hostname:
        raise UnsafeEndpoint("webhook URL has no host")
    if parts.username or parts.password:
        raise UnsafeEndpoint("webhook URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeEndpoint("webhook URL has an invalid port") from exc
    return parts.hostname, port


def is_public(ip: IpAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


async def resolve(url: str, *, allow_private: bool) -> list[IpAddress]:
    """The addresses the URL's host resolves to, all allowed; UnsafeEndpoint if any is not."""
    host, port = check_url(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeEndpoint(f"webhook host does not resolve: {host}") from exc
    found: list[IpAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if ip not in found:
            found.append(ip)
    if not found:
        raise UnsafeEndpoint(f"webhook host does not resolve: {host}")
    if not allow_private:
        refused = [str(ip) for ip in found if not is_public(ip)]
        if refused:
            raise UnsafeEndpoint(
                f"webhook host {host} resolves to a non-public address ({', '.join(refused)}); "
                "set [webhooks] allow_private = true to allow it"
            )
    return found
