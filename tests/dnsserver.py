"""A real DNS server on loopback for tests: UDP (and TCP for truncated answers), built on dnspython's
message API, serving the zone data a test puts in. It can answer SERVFAIL, answer late, or never answer,
per name or for everything, and it counts every query it receives.

Runs in its own threads, so it answers whatever event loop (or none) the code under test uses.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

UDP_MAX = 1232


@dataclass
class Zone:
    """What the server answers: records by (name, type), and names that misbehave."""

    records: dict[tuple[str, str], list[dns.rdata.Rdata]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)  # never answered
    silent_all: bool = False
    delay: float = 0.0  # seconds before every answer
    ttl: int = 300


def _key(name: str) -> str:
    return name.lower().rstrip(".")


class DnsServer:
    def __init__(self) -> None:
        self.zone = Zone()
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._udp, self._tcp = _bind_pair()
        self.port = self._udp.getsockname()[1]
        self._stopped = threading.Event()
        # timeouts are set before the threads start: a close() that comes first must not meet a
        # settimeout() on a closed socket inside a thread (an unhandled OSError there fails a later test)
        self._udp.settimeout(0.2)
        self._tcp.settimeout(0.2)
        self._threads = [
            threading.Thread(target=self._serve_udp, daemon=True),
            threading.Thread(target=self._serve_tcp, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def address(self) -> str:
        """For `[dns] servers`."""
        return f"127.0.0.1:{self.port}"

    # --- zone data ---------------------------------------------------------------------------------------

    def add(self, name: str, rdtype: str, *values: str) -> None:
        """Records in zone-file text, e.g. add("acme.test", "MX", "10 mx.acme.test.")."""
        rdatas = [dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), v) for v in values]
        self.zone.records.setdefault((_key(name), rdtype.upper()), []).extend(rdatas)

    def txt(self, name: str, *texts: str) -> None:
        """One TXT record per text; texts over 255 bytes are split into several strings (RFC 7208 §3.3)."""
        for text in texts:
            data = text.encode("latin-1")
            chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
            rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)
            self.zone.records.setdefault((_key(name), "TXT"), []).append(rdata)

    def reset(self) -> None:
        self.zone = Zone()
        with self._lock:
            self.queries.clear()

    def queried(self, name: str | None = None) -> list[tuple[str, str]]:
        with self._lock:
            return [q for q in self.queries if name is None or q[0] == _key(name)]

    # --- serving -----------------------------------------------------------------------------------------

    def answer(self, wire: bytes, *, tcp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        if not query.question:
            return None
        question = query.question[0]
        name = _key(question.name.to_text())
        rdtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries.append((name, rdtype))
        zone = self.zone
        if zone.silent_all or name in zone.silent:
            return None
        if zone.delay:
            time.sleep(zone.delay)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name in zone.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        rdatas = zone.records.get((name, rdtype))
        if rdatas:
            rrset = dns.rrset.from_rdata_list(question.name, zone.ttl, rdatas)
            response.answer.append(rrset)
        elif not any(key[0] == name or key[0].endswith("." + name) for key in zone.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        wire_out = response.to_wire()
        if not tcp and len(wire_out) > UDP_MAX:
            response.answer.clear()
            response.flags |= dns.flags.TC
            wire_out = response.to_wire()
        return wire_out

    def _serve_udp(self) -> None:
        while not self._stopped.is_set():
            try:
                wire, peer = self._udp.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._reply_udp, args=(wire, peer), daemon=True).start()

    def _reply_udp(self, wire: bytes, peer: tuple[str, int]) -> None:
        out = self.answer(wire, tcp=False)
        if out is not None and not self._stopped.is_set():
            with suppress(OSError):
                self._udp.sendto(out, peer)

    def _serve_tcp(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._reply_tcp, args=(conn,), daemon=True).start()

    def _reply_tcp(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                head = conn.recv(2)
                if len(head) < 2:
                    return
                (size,) = struct.unpack("!H", head)
                wire = b""
                while len(wire) < size:
                    chunk = conn.recv(size - len(wire))
                    if not chunk:
                        return
                    wire += chunk
                out = self.answer(wire, tcp=True)
                if out is not None:
                    conn.sendall(struct.pack("!H", len(out)) + out)
            except OSError:
                return

    def close(self) -> None:
        self._stopped.set()  # the serving threads notice within their 0.2 s socket timeout
        for thread in self._threads:
            thread.join(timeout=2)
        self._udp.close()
        self._tcp.close()


def _bind_pair() -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on one free loopback port (the TCP half of a free UDP port may be taken)."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(16)
        return udp, tcp
    raise OSError("no free loopback port for the test DNS server")


@contextmanager
def running_dns() -> Iterator[DnsServer]:
    server = DnsServer()
    try:
        yield server
    finally:
        server.close()


_quiet: DnsServer | None = None
_quiet_lock = threading.Lock()


def quiet_dns() -> DnsServer:
    """One empty server per test process (every name NXDOMAIN) for apps whose tests are not about DNS:
    their sender authentication then asks loopback, never the machine's resolver."""
    global _quiet
    with _quiet_lock:
        if _quiet is None:
            _quiet = DnsServer()
        return _quiet


_QUIET: list[DnsServer] = []


def quiet_server() -> DnsServer:
    """One server per test process with nothing in it (every name NXDOMAIN): the default `[dns]` of the
    bccd apps and processes tests start, so sender authentication (new companies record it) never asks
    the network."""
    if not _QUIET:
        _QUIET.append(DnsServer())
    return _QUIET[0]
