"""Settings suggestion in Thunderbird's order, offline: a local DNS server and a local HTTP
server stand in for the domain's name servers and its autoconfig host."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.mail_settings.autoconfig import parse_autoconfig
from gateway.mail_settings.model import ServerSetting
from gateway.mail_settings.suggest import InvalidAddressError, SettingsSuggester
from tests.admin.conftest import ALICE_PASSWORD, AdminHarness
from tests.support.local_dns import LocalDns

AUTOCONFIG = b"""<?xml version="1.0"?>
<clientConfig version="1.1">
  <emailProvider id="example.net">
    <domain>example.net</domain>
    <incomingServer type="imap">
      <hostname>imap.example.net</hostname><port>993</port><socketType>SSL</socketType>
      <username>%EMAILLOCALPART%</username><authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.example.net</hostname><port>110</port><socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.example.net</hostname><port>587</port><socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>"""


@contextmanager
def suggester(zone: dict[tuple[str, str], list[str]], documents: dict[str, bytes]):
    with LocalDns(zone) as dns_server:
        requested: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requested.append(self.path)
                body = documents.get(self.path.strip("/").split("/")[0])
                self.send_response(200 if body else 404)
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=http.serve_forever, daemon=True).start()
        port = http.server_address[1]
        try:
            yield (
                SettingsSuggester(
                    resolver=dns_server.resolver(),
                    urls=lambda domain, _address: [
                        f"http://127.0.0.1:{port}/{domain}/mail/config-v1.1.xml"
                    ],
                    timeout=2.0,
                ),
                requested,
                dns_server.queries,
            )
        finally:
            http.shutdown()
            http.server_close()


def test_known_provider_comes_from_the_built_in_table_without_any_lookup() -> None:
    with suggester({}, {}) as (finder, requested, queries):
        found = asyncio.run(finder.suggest("someone@gmail.com"))
    assert found.origin == "provider" and requested == [] and queries == []
    assert found.servers[0] == ServerSetting(
        "imap", "imap.gmail.com", 993, "tls", "someone@gmail.com"
    )
    assert {s.protocol for s in found.servers} == {"imap", "pop3", "smtp"}


def test_autoconfig_comes_before_srv_and_fills_username_placeholders() -> None:
    zone = {("_imaps._tcp.example.net.", "SRV"): ["0 1 993 srv-imap.example.net."]}
    with suggester(zone, {"example.net": AUTOCONFIG}) as (finder, requested, queries):
        found = asyncio.run(finder.suggest("jo@example.net"))
    assert found.origin == "autoconfig" and queries == []
    assert requested == ["/example.net/mail/config-v1.1.xml"]
    assert found.servers == [
        ServerSetting("imap", "imap.example.net", 993, "tls", "jo"),
        ServerSetting("pop3", "pop.example.net", 110, "starttls", "jo@example.net"),
        ServerSetting("smtp", "smtp.example.net", 587, "starttls", "jo@example.net"),
    ]


def test_rfc6186_srv_records_when_there_is_no_autoconfig() -> None:
    zone = {
        ("_imaps._tcp.example.org.", "SRV"): [
            "20 1 993 backup.example.org.",
            "10 1 993 mx.example.org.",
        ],
        ("_pop3s._tcp.example.org.", "SRV"): ["0 0 0 ."],  # RFC 6186 §4: not offered
        ("_submission._tcp.example.org.", "SRV"): ["0 1 587 mx.example.org."],
    }
    with suggester(zone, {}) as (finder, _requested, _queries):
        found = asyncio.run(finder.suggest("a@example.org"))
    assert found.origin == "srv"
    assert found.servers == [
        ServerSetting("imap", "mx.example.org", 993, "tls", "a@example.org"),
        ServerSetting("smtp", "mx.example.org", 587, "starttls", "a@example.org"),
    ]


def test_conventional_names_last_and_only_those_that_resolve() -> None:
    zone = {
        ("mail.example.com.", "A"): ["192.0.2.1"],
        ("smtp.example.com.", "A"): ["192.0.2.2"],
    }
    with suggester(zone, {}) as (finder, _requested, _queries):
        found = asyncio.run(finder.suggest("b@example.com"))
    assert found.origin == "guess"
    assert found.servers == [
        ServerSetting("imap", "mail.example.com", 993, "tls", "b@example.com"),
        ServerSetting("pop3", "mail.example.com", 995, "tls", "b@example.com"),
        ServerSetting("smtp", "smtp.example.com", 587, "starttls", "b@example.com"),
    ]
    with suggester({}, {}) as (finder, _requested, _queries):
        assert asyncio.run(finder.suggest("c@nothing.example")).origin == "none"


def test_bad_addresses_and_documents() -> None:
    with suggester({}, {}) as (finder, _requested, _queries):
        for text in ("no-at-sign", "a@localhost", "a b@example.com", "@example.com"):
            with pytest.raises(InvalidAddressError):
                asyncio.run(finder.suggest(text))
    assert parse_autoconfig(b"<not xml", "a@b.c") == []
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    assert parse_autoconfig(bomb, "a@b.c") == []


def test_suggest_endpoint(admin_harness: AdminHarness) -> None:
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    found = alice.get("/api/suggest", params={"address": "me@googlemail.com"}).json()
    assert found["origin"] == "provider" and found["servers"][0]["host"] == "imap.gmail.com"
    assert alice.get("/api/suggest", params={"address": "nonsense"}).status_code == 422
    assert admin_harness.client().get("/api/suggest?address=a@b.cd").status_code == 401
