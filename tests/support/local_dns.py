"""A tiny authoritative DNS server on 127.0.0.1 (UDP, a random port) answering from a dict,
so settings suggestion is tested offline with the real dnspython resolver."""

from __future__ import annotations

import socket
import threading
from types import TracebackType

import dns.asyncresolver
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

# (name, type) -> rdata texts, e.g. ("_imaps._tcp.example.org.", "SRV"): ["0 1 993 mail.x."]
Zone = dict[tuple[str, str], list[str]]


class LocalDns:
    def __init__(self, zone: Zone) -> None:
        self.zone = {(name.lower(), kind): rdata for (name, kind), rdata in zone.items()}
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self.queries: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def resolver(self) -> dns.asyncresolver.Resolver:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        return resolver

    def __enter__(self) -> LocalDns:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            question = query.question[0]
            name = question.name.to_text().lower()
            kind = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, kind))
            answers = self.zone.get((name, kind))
            if answers:
                response.answer.append(dns.rrset.from_text(name, 60, "IN", kind, *answers))
            elif not any(zone_name == name for zone_name, _ in self.zone):
                response.set_rcode(dns.rcode.NXDOMAIN)
            self._sock.sendto(response.to_wire(), peer)
