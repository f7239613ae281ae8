"""BODY and BODYSTRUCTURE rendering (RFC 3501 §7.4.2), byte-compatible with Dovecot 2.3.

Mirrors lib-imap/imap-bodystructure.c: a missing Content-Type is text/plain with charset
us-ascii, a multipart without children is shown with one empty text/plain part, types and
parameter names keep the case the sender used, and message/rfc822 parts embed the envelope,
structure and line count of the enclosed message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.mime.imap_quote import nstring, nstring_nolf
from gateway.mime.part_data import EMPTY_ENVELOPE, PartData

if TYPE_CHECKING:
    from gateway.mime.scanner import ScannedPart

_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
_EMPTY_BODYSTRUCTURE = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'


def _params(params: list[tuple[bytes, bytes]], default_charset: bool) -> bytes:
    if not params and not default_charset:
        return b"NIL"
    items: list[bytes] = []
    seen_charset = False
    for key, value in params:
        if key.lower() == b"charset":
            seen_charset = True
        items.append(nstring(key) + b" " + nstring(value))
    if default_charset and not seen_charset:
        items.append(b'"charset" "us-ascii"')
    return b"(" + b" ".join(items) + b")"


def _extension_common(data: PartData) -> bytes:
    # body-fld-dsp, body-fld-lang, body-fld-loc (RFC 3501 §9 body-ext-1part / body-ext-mpart)
    if data.content_disposition is None:
        disposition = b"NIL"
    else:
        disposition = (
            b"("
            + nstring(data.content_disposition)
            + b" "
            + _params(data.content_disposition_params, False)
            + b")"
        )
    if data.content_language is None:
        language = b"NIL"
    else:
        language = b"(" + b" ".join(nstring(lang) for lang in data.content_language) + b")"
    return b" " + disposition + b" " + language + b" " + nstring_nolf(data.content_location)


def render_structure(part: ScannedPart, extended: bool) -> bytes:
    """BODYSTRUCTURE (``extended``) or BODY of a part, without the enclosing parentheses."""
    data = part.data
    if part.is_multipart:
        if part.children:
            body = b"".join(b"(" + render_structure(c, extended) + b")" for c in part.children)
        else:
            body = _EMPTY_BODYSTRUCTURE if extended else _EMPTY_BODY
        out = body + b" " + nstring(data.content_subtype or b"")
        if extended:
            out += b" " + _params(data.content_type_params, False) + _extension_common(data)
        return out

    if part.is_message:
        out = b'"message" "rfc822"'
        text = False
    elif data.content_type is None:
        out = b'"text" "plain"'
        text = True
    else:
        text = data.content_type.lower() == b"text"
        out = nstring(data.content_type) + b" " + nstring(data.content_subtype or b"")
    cte = data.content_transfer_encoding
    out += (
        b" "
        + _params(data.content_type_params, text)
        + b" "
        + nstring_nolf(data.content_id)
        + b" "
        + nstring_nolf(data.content_description)
        + b" "
        + (nstring(cte) if cte is not None else b'"7bit"')
        + b" %d" % part.body_size
    )
    if text:
        out += b" %d" % part.body_lines
    elif part.is_message:
        child = part.children[0] if part.children else None
        if child is None:
            envelope, inner = EMPTY_ENVELOPE, _EMPTY_BODYSTRUCTURE if extended else _EMPTY_BODY
        else:
            envelope = child.envelope.render() if child.envelope else EMPTY_ENVELOPE
            inner = b"(" + render_structure(child, extended) + b")"
        out += b" (" + envelope + b") " + inner + b" %d" % part.body_lines
    if extended:
        out += b" " + nstring_nolf(data.content_md5) + _extension_common(data)
    return out


def render_bodystructure(root: ScannedPart) -> bytes:
    return b"(" + render_structure(root, True) + b")"


def render_body(root: ScannedPart) -> bytes:
    return b"(" + render_structure(root, False) + b")"
