"""Sans-IO message analysis: ENVELOPE, BODYSTRUCTURE, part offsets and search text.

Feed raw RFC 5322 bytes to :class:`MessageAnalyzer` (or call :func:`analyze_message`); the
result renders ENVELOPE/BODY/BODYSTRUCTURE exactly as Dovecot 2.3 does for the same bytes.
"""

from gateway.mime.analyzer import MessageAnalyzer, analyze_message, search_text
from gateway.mime.model import AnalyzedMessage, PartSpan, parts_from_json, parts_to_json

__all__ = [
    "AnalyzedMessage",
    "MessageAnalyzer",
    "PartSpan",
    "analyze_message",
    "parts_from_json",
    "parts_to_json",
    "search_text",
]
