"""Deterministic corpora of realistic and malformed mail for tests and benchmarks.

``generate_corpus`` yields varied, mostly well-formed messages with CRLF line endings (so that
Dovecot's CRLF-based sizes equal the raw sizes); ``malformed_corpus`` lists named hand-made
broken cases; ``large_attachment`` builds one big message for memory tests.
"""

from __future__ import annotations

import base64
import quopri
import random
import textwrap
from collections.abc import Callable, Iterator
from email.header import Header

CRLF = b"\r\n"

_WORDS = [
    "meeting",
    "invoice",
    "project",
    "report",
    "budget",
    "schedule",
    "review",
    "deploy",
    "server",
    "backup",
    "quarterly",
    "draft",
    "contract",
    "proposal",
    "update",
    "release",
    "notes",
    "customer",
    "feedback",
    "weekend",
    "plan",
    "travel",
    "ticket",
    "database",
    "migration",
    "security",
    "patch",
    "holiday",
    "party",
    "lunch",
    "agenda",
    "minutes",
]
_NAMES = [
    ("Alice Example", "alice", "example.org"),
    ("Bob O'Neil", "bob.oneil", "mail.example.com"),
    ('Carol "CJ" Jones', "carol", "jones.example"),
    ("Doe, John", "john.doe", "corp.example.net"),
    ("Jörg Müller", "joerg", "example.de"),
    ("山田 太郎", "taro.yamada", "example.jp"),
    ("", "noreply", "notifications.example.com"),
    ("François Lefèvre", "f.lefevre", "exemple.fr"),
]
_JAPANESE = "日本語のメールです。会議は明日の午後三時からです。よろしくお願いします。"


def crlf(text: str | bytes) -> bytes:
    """Normalise any line endings to CRLF."""
    data = text.encode() if isinstance(text, str) else text
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _paragraphs(rng: random.Random, size: int) -> str:
    out: list[str] = []
    total = 0
    while total < size:
        para = " ".join(_sentence(rng, rng.randint(5, 14)) for _ in range(rng.randint(2, 6)))
        wrapped = textwrap.fill(para, 72)
        out.append(wrapped)
        total += len(wrapped) + 2
    return "\n\n".join(out) + "\n"


def _encode_name(rng: random.Random, name: str) -> str:
    if not name:
        return ""
    if name.isascii():
        if any(c in name for c in ',"'):
            return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return name
    charset = rng.choice(["utf-8", "iso-8859-1"]) if name.isascii() is False else "utf-8"
    try:
        name.encode(charset)
    except UnicodeEncodeError:
        charset = "utf-8"
    return Header(name, charset).encode()


def _address(rng: random.Random, entry: tuple[str, str, str] | None = None) -> str:
    name, box, domain = entry or rng.choice(_NAMES)
    shown = _encode_name(rng, name)
    form = rng.random()
    if not shown or form < 0.15:
        return f"{box}@{domain}"
    if form < 0.2:
        return f"{box}@{domain} ({name if name.isascii() else 'comment'})"
    return f"{shown} <{box}@{domain}>"


def _address_list(rng: random.Random, count: int) -> str:
    return ", ".join(_address(rng) for _ in range(count))


def _subject(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.1:
        return Header(_JAPANESE[: rng.randint(5, 20)], "iso-2022-jp").encode()
    if kind < 0.15:
        return Header("Réunion: " + _sentence(rng, 3), "utf-8").encode()
    if kind < 0.2:
        return "Re: " + _sentence(rng, rng.randint(2, 6))
    if kind < 0.23:
        return "Fwd: [list] " + _sentence(rng, 4) + ' "quoted" \\ back'
    return _sentence(rng, rng.randint(2, 9))


def _date(rng: random.Random) -> str:
    day = rng.randint(1, 28)
    month = rng.choice(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    )
    zone = rng.choice(["+0000", "-0500", "+0900", "+0100", "-0000"])
    weekday = rng.choice(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    return f"{weekday}, {day} {month} {rng.randint(2015, 2025)} {rng.randint(0, 23):02d}:" + (
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} {zone}"
    )


def _top_headers(rng: random.Random, index: int, extra: list[str]) -> list[str]:
    headers = [
        "Return-Path: <bounce@example.org>",
        f"Received: from mx{rng.randint(1, 9)}.example.org (mx.example.org [192.0.2.{index % 250}])"
        f"\n\tby mail.example.net with ESMTPS id {rng.getrandbits(48):x}\n\tfor <x@example.net>;"
        f" {_date(rng)}",
        f"Date: {_date(rng)}",
        f"From: {_address(rng)}",
        f"To: {_address_list(rng, rng.randint(1, 4))}",
    ]
    roll = rng.random()
    if roll < 0.3:
        headers.append(f"Cc: {_address_list(rng, rng.randint(1, 3))}")
    if roll > 0.9:
        headers.append(f"Bcc: {_address(rng)}")
    if rng.random() < 0.1:
        headers.append(f"Reply-To: {_address(rng)}")
    if rng.random() < 0.05:
        headers.append(f"Sender: {_address(rng)}, {_address(rng)}")
    headers.append(f"Subject: {_subject(rng)}")
    headers.append(f"Message-ID: <{rng.getrandbits(64):x}.{index}@example.org>")
    if rng.random() < 0.25:
        headers.append(f"In-Reply-To: <{rng.getrandbits(40):x}@example.org>")
        headers.append(
            f"References: <{rng.getrandbits(40):x}@example.org>\n <{rng.getrandbits(40):x}@x>"
        )
    headers.append("MIME-Version: 1.0")
    headers.extend(extra)
    return headers


def _join(headers: list[str], body: bytes) -> bytes:
    head = crlf("\n".join(headers) + "\n\n")
    return head + body


def _b64(data: bytes) -> bytes:
    return crlf(base64.encodebytes(data))


def _text_part(rng: random.Random, size: int, subtype: str = "plain") -> tuple[list[str], bytes]:
    kind = rng.random()
    text = _paragraphs(rng, size)
    if subtype == "html":
        html = (
            "<html><body>"
            + "".join(f"<p>{p}</p>\n" for p in text.split("\n\n"))
            + "</body></html>\n"
        )
        return [
            'Content-Type: text/html; charset="utf-8"',
            "Content-Transfer-Encoding: 7bit",
        ], crlf(html)
    if kind < 0.15:
        raw = (text + "Grüße aus Köln — ünïcödé\n").encode()
        return [
            "Content-Type: text/plain; charset=utf-8; format=flowed",
            "Content-Transfer-Encoding: quoted-printable",
        ], crlf(quopri.encodestring(raw))
    if kind < 0.25:
        return [
            "Content-Type: text/plain; charset=ISO-2022-JP",
            "Content-Transfer-Encoding: 7bit",
        ], crlf(((_JAPANESE + "\n") * max(1, size // 120)).encode("iso-2022-jp"))
    if kind < 0.3:
        return [
            "Content-Type: text/plain; charset=Shift_JIS",
            "Content-Transfer-Encoding: 8bit",
        ], crlf(((_JAPANESE + "\n") * max(1, size // 120)).encode("shift_jis"))
    if kind < 0.4:
        return [
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
        ], _b64((text + _JAPANESE + "\n").encode())
    return ["Content-Type: text/plain; charset=us-ascii"], crlf(text)


def _attachment(rng: random.Random, size: int) -> tuple[list[str], bytes]:
    kind = rng.choice(["pdf", "png", "zip", "ics", "csv"])
    name = f"{rng.choice(_WORDS)}-{rng.randint(1, 999)}.{kind}"
    payload = rng.randbytes(size)
    if kind == "pdf":
        payload = b"%PDF-1.4\n" + payload
    mime = {
        "pdf": "application/pdf",
        "png": "image/png",
        "zip": "application/zip",
        "ics": "text/calendar; method=REQUEST; charset=UTF-8",
        "csv": "text/csv",
    }[kind]
    if kind == "ics":
        body = crlf(
            "BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:REQUEST\nBEGIN:VEVENT\n"
            f"UID:{rng.getrandbits(64):x}\nSUMMARY:{_sentence(rng, 4)}\n"
            "DTSTART:20250101T100000Z\nEND:VEVENT\nEND:VCALENDAR\n"
        )
        return [f"Content-Type: {mime}", "Content-Transfer-Encoding: 7bit"], body
    disposition = rng.random()
    if disposition < 0.2:
        disp = f"Content-Disposition: attachment;\n filename*=UTF-8''%E2%82%AC{name}"
    elif disposition < 0.3:
        disp = f'Content-Disposition: attachment;\n filename*0="long-{name}";\n filename*1="-part2"'
    else:
        disp = f'Content-Disposition: attachment; filename="{name}"; size={size}'
    headers = [f'Content-Type: {mime}; name="{name}"', "Content-Transfer-Encoding: base64", disp]
    if rng.random() < 0.1:
        headers += [
            "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
            "Content-Language: en, de",
            "Content-Location: http://example.org/file",
            "Content-ID: <att1@example.org>",
            "Content-Description: an attachment",
        ]
    return headers, _b64(payload)


def _multipart(
    subtype: str, parts: list[tuple[list[str], bytes]], rng: random.Random, extra_params: str = ""
) -> tuple[list[str], bytes]:
    boundary = f"=_{rng.getrandbits(64):x}"
    body = bytearray(crlf("This is a multi-part message in MIME format.\n"))
    for headers, content in parts:
        body += crlf(f"--{boundary}\n" + "\n".join(headers) + "\n\n") + content
        if not content.endswith(CRLF):
            body += CRLF
    body += crlf(f"--{boundary}--\n")
    return [f'Content-Type: multipart/{subtype}; boundary="{boundary}"{extra_params}'], bytes(body)


def _attachment_size(rng: random.Random, max_size: int) -> int:
    roll = rng.random()
    if roll < 0.08:
        size = rng.randint(100_000, 2_000_000)
    elif roll < 0.5:
        size = rng.randint(5_000, 40_000)
    else:
        size = rng.randint(500, 5_000)
    return max(64, min(size, max_size * 3 // 4))


def _plain(rng: random.Random, index: int, max_size: int) -> bytes:
    headers, body = _text_part(rng, rng.randint(2_000, min(45_000, max_size)))
    return _join(_top_headers(rng, index, headers), body)


def _html(rng: random.Random, index: int, max_size: int) -> bytes:
    headers, body = _text_part(rng, rng.randint(500, min(30_000, max_size)), "html")
    return _join(_top_headers(rng, index, headers), body)


def _alternative(rng: random.Random, index: int, max_size: int) -> tuple[list[str], bytes]:
    size = rng.randint(2_000, min(20_000, max_size))
    return _multipart("alternative", [_text_part(rng, size), _text_part(rng, size, "html")], rng)


def _alternative_message(rng: random.Random, index: int, max_size: int) -> bytes:
    headers, body = _alternative(rng, index, max_size)
    return _join(_top_headers(rng, index, headers), body)


def _mixed(rng: random.Random, index: int, max_size: int) -> bytes:
    parts = [_alternative(rng, index, max_size) if rng.random() < 0.5 else _text_part(rng, 2000)]
    for _ in range(rng.randint(1, 3)):
        parts.append(_attachment(rng, _attachment_size(rng, max_size)))
    headers, body = _multipart("mixed", parts, rng)
    return _join(_top_headers(rng, index, headers), body)


def _related(rng: random.Random, index: int, max_size: int) -> bytes:
    html = _text_part(rng, 3000, "html")
    image = _attachment(rng, rng.randint(1000, 20_000))
    image = (
        [
            "Content-Type: image/png",
            "Content-ID: <img1@example.org>",
            "Content-Transfer-Encoding: base64",
            "Content-Disposition: inline",
        ],
        image[1],
    )
    headers, body = _multipart("related", [html, image], rng, '; type="text/html"')
    return _join(_top_headers(rng, index, headers), body)


def _forward(rng: random.Random, index: int, max_size: int) -> bytes:
    inner = _GENERATORS[rng.randrange(4)](rng, index + 100_000, max_size // 2)
    parts = [
        _text_part(rng, 500),
        (["Content-Type: message/rfc822", "Content-Disposition: inline"], inner),
    ]
    headers, body = _multipart("mixed", parts, rng)
    return _join(_top_headers(rng, index, headers), body)


def _digest(rng: random.Random, index: int, max_size: int) -> bytes:
    parts = []
    for n in range(rng.randint(2, 4)):
        inner_headers, inner_body = _text_part(rng, 800)
        msg = _join(
            [
                f"From: {_address(rng)}",
                f"Subject: digest item {n}",
                f"Date: {_date(rng)}",
                *inner_headers,
            ],
            inner_body,
        )
        parts.append(([], msg))
    headers, body = _multipart("digest", parts, rng)
    return _join(_top_headers(rng, index, headers), body)


def _calendar(rng: random.Random, index: int, max_size: int) -> bytes:
    ics = _attachment(rng, 0)
    while "text/calendar" not in ics[0][0]:
        ics = _attachment(rng, 100)
    headers, body = _multipart("alternative", [_text_part(rng, 400), ics], rng)
    return _join(_top_headers(rng, index, headers), body)


def _odd(rng: random.Random, index: int, max_size: int) -> bytes:
    """Unusual but real-world shapes."""
    kind = rng.randrange(9)
    base = _top_headers(rng, index, [])
    if kind == 0:  # no Content-Type at all, no MIME-Version
        base = [h for h in base if not h.startswith("MIME-Version")]
        return _join(base, crlf(_paragraphs(rng, 1000)))
    if kind == 1:  # empty multipart
        return _join(
            [*base, "Content-Type: multipart/mixed; boundary=empty"], crlf("nothing here\n")
        )
    if kind == 2:  # missing final boundary
        return _join(
            [*base, "Content-Type: multipart/mixed; boundary=mf"],
            crlf("--mf\nContent-Type: text/plain\n\npart one\n--mf\n\npart two\n"),
        )
    if kind == 3:  # binary transfer encoding
        return _join(
            [*base, "Content-Type: application/octet-stream", "Content-Transfer-Encoding: binary"],
            crlf(rng.randbytes(3000)),
        )
    if kind == 4:  # upper/lower case type names and parameters
        return _join(
            [
                *base,
                'Content-Type: TEXT/Plain; CharSet="ISO-8859-1"; Format=Flowed',
                "Content-Transfer-Encoding: 8BIT",
            ],
            crlf("Caf\xe9 cr\xe8me\n".encode("latin-1")),
        )
    if kind == 5:  # group syntax and undisclosed recipients
        base = [h for h in base if not h.startswith(("To:", "Cc:"))]
        return _join(
            [
                *base,
                "To: undisclosed-recipients:;",
                'Cc: Team: a@example.org, "B, b" <b@example.org>;, c@example.org',
                "Content-Type: text/plain",
            ],
            crlf("group test\n"),
        )
    if kind == 6:  # missing From, 8-bit raw header
        base = [h for h in base if not h.startswith("From:")]
        raw = _join([*base, "Content-Type: text/plain; charset=utf-8"], crlf("no from\n"))
        return raw.replace(b"Subject: ", "Subject: Ünïcode räw ".encode(), 1)
    if kind == 7:  # RFC 2047 in display names and RFC 2231 parameters
        return _join(
            [
                *base,
                "Content-Type: application/octet-stream;\n name*0*=utf-8''%E6%97%A5;"
                "\n name*1*=%E6%9C%AC.txt",
                "Content-Disposition: attachment; filename*=iso-8859-1'fr'd%E9j%E0.txt",
            ],
            _b64(rng.randbytes(200)),
        )
    # nested message/rfc822 two levels deep
    inner = _plain(rng, index + 200_000, 4000)
    middle = _join(
        [
            "From: fwd@example.org",
            "Subject: inner forward",
            "MIME-Version: 1.0",
            "Content-Type: message/rfc822",
        ],
        inner,
    )
    return _join([*base, "Content-Type: message/rfc822"], middle)


_GENERATORS: list[Callable[[random.Random, int, int], bytes]] = [
    _plain,
    _html,
    _alternative_message,
    _mixed,
    _related,
    _forward,
    _digest,
    _calendar,
    _odd,
]
_WEIGHTS = [22, 10, 20, 20, 5, 8, 3, 4, 8]


def generate_corpus(count: int, seed: int = 1, max_size: int = 2_500_000) -> Iterator[bytes]:
    """``count`` varied CRLF messages, identical for the same (count, seed, max_size)."""
    rng = random.Random(seed)
    for index in range(count):
        generator = rng.choices(_GENERATORS, _WEIGHTS)[0]
        yield generator(random.Random(rng.getrandbits(64)), index, max(max_size, 2_000))


def malformed_corpus() -> list[tuple[str, bytes]]:
    """Named hand-made broken messages (not all CRLF: see ``crlf`` to normalise)."""
    jp_subject = Header("日本語の件名", "iso-2022-jp").encode()
    sjis_subject = (
        "=?Shift_JIS?B?" + base64.b64encode("件名テスト".encode("shift_jis")).decode() + "?="
    )
    utf8_subject = Header("Ünïcödé ✓ 件名", "utf-8").encode()
    return [
        ("bare_lf", b"From: a@example.org\nSubject: bare LF\n\nline one\nline two\n"),
        ("mixed_line_endings", b"From: a@b\r\nSubject: mixed\n\r\nbody\nmore\r\n"),
        (
            "eight_bit_headers",
            "From: Jörg <j@example.de>\r\nSubject: Grüße\r\n\r\nbody\r\n".encode(),
        ),
        (
            "latin1_headers",
            "Subject: caf\xe9\r\nFrom: Ren\xe9 <r@x>\r\n\r\nx\r\n".encode("latin-1"),
        ),
        (
            "broken_boundary",
            crlf(
                b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=abc\n\n"
                b"--ab\nnot a boundary\n--abcd\nContent-Type: text/html\n\nprefix match\n"
                b"--abc--\n"
            ),
        ),
        (
            "missing_final_boundary",
            crlf(
                b"MIME-Version: 1.0\nContent-Type: multipart/alternative;"
                b" boundary=q\n\n--q\n\none\n--q\nContent-Type: text/html\n\n<b>"
            ),
        ),
        ("no_boundary_param", crlf(b"MIME-Version: 1.0\nContent-Type: multipart/mixed\n\nbody\n")),
        (
            "empty_multipart",
            crlf(b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=z\n\n"),
        ),
        ("missing_date_and_message_id", crlf(b"From: a@b\nSubject: none\n\nx\n")),
        ("subject_iso_2022_jp", crlf(f"Subject: {jp_subject}\nFrom: a@b\n\nx\n".encode())),
        ("subject_shift_jis", crlf(f"Subject: {sjis_subject}\nFrom: a@b\n\nx\n".encode())),
        ("subject_utf8", crlf(f"Subject: {utf8_subject}\nFrom: a@b\n\nx\n".encode())),
        (
            "iso_2022_jp_body",
            crlf(
                b"Subject: jp\nMIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\n\n"
            )
            + crlf(_JAPANESE.encode("iso-2022-jp")),
        ),
        ("header_only", b"From: a@b\r\nSubject: header only\r\n"),
        ("header_only_blank", b"From: a@b\r\nSubject: header only\r\n\r\n"),
        ("body_without_separator", b"this is not a header\r\njust text\r\n"),
        ("nul_bytes", b"Subject: nul\x00here\r\nFrom: a\x00b@c\r\n\r\nbody\x00\x00\r\n"),
        ("very_long_line", b"Subject: long\r\n\r\n" + b"x" * 300_000 + b"\r\nend\r\n"),
        ("very_long_header", b"Subject: " + b"y " * 100_000 + b"\r\n\r\nbody\r\n"),
        ("unterminated_quote", crlf(b'From: "Unterminated <a@b>\nTo: (open comment a@b\n\nx\n')),
        ("several_senders", crlf(b"From: a@b, c@d\nSender: s1@x, s2@y\n\nx\n")),
        (
            "obsolete_addresses",
            crlf(b"From: <@r1,@r2:a@b>, John . Q . Public <jqp@x>, x@[10.0.0.1]\n\nx\n"),
        ),
        ("empty_headers", crlf(b"From:\nTo:\nSubject:\nDate:\n\n")),
        (
            "binary_cte",
            crlf(
                b"MIME-Version: 1.0\nContent-Type: application/octet-stream\n"
                b"Content-Transfer-Encoding: binary\n\n"
            )
            + bytes(range(256)),
        ),
        ("broken_content_type", crlf(b"MIME-Version: 1.0\nContent-Type: text\n\nx\n")),
        (
            "broken_params",
            crlf(b'MIME-Version: 1.0\nContent-Type: text/plain; charset; x="y\n\nx\n'),
        ),
        (
            "digest_defaults",
            crlf(
                b"MIME-Version: 1.0\nContent-Type: multipart/digest; boundary=d\n\n"
                b"--d\n\nSubject: in digest\n\nhi\n--d--\n"
            ),
        ),
        ("deep_nesting", _deep_nesting(30)),
        ("empty_message", b""),
        ("only_crlf", b"\r\n"),
    ]


def _deep_nesting(depth: int) -> bytes:
    body = b"innermost\r\n"
    for level in range(depth):
        boundary = f"b{level}".encode()
        body = (
            b"Content-Type: multipart/mixed; boundary="
            + boundary
            + b"\r\n\r\n--"
            + boundary
            + b"\r\n"
            + body
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    return b"MIME-Version: 1.0\r\n" + body


def large_attachment(size_bytes: int, seed: int = 7) -> bytes:
    """A message with one base64 attachment of about ``size_bytes`` raw octets."""
    rng = random.Random(seed)
    payload = rng.randbytes(size_bytes * 3 // 4)
    head = crlf(
        "From: big@example.org\nTo: you@example.org\nSubject: large attachment\n"
        "Date: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <large@example.org>\n"
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=LARGE\n\n"
        "--LARGE\nContent-Type: text/plain\n\nSee attachment.\n"
        "--LARGE\nContent-Type: application/octet-stream; name=big.bin\n"
        "Content-Transfer-Encoding: base64\n\n"
    )
    return head + _b64(payload) + crlf("--LARGE--\n")
