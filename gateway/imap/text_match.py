"""How SEARCH compares text: Dovecot's normaliser (canonical decomposition, then case folding).

"ete" is not in "été" but "e" is, "KÖLN" is in "Köln", "ss" is not in "ß".
"""

from __future__ import annotations

import re
import unicodedata

# Dovecot title-cases; lower() after NFD agrees except for these lower-case letters whose
# upper-case form lower-cases to another letter (final sigma, dotless i, long s, ...).
_EXTRA_FOLDS: dict[int, int] = {
    0x00B5: 0x03BC,  # micro sign
    0x0131: 0x0069,  # latin small letter dotless i
    0x017F: 0x0073,  # latin small letter long s
    0x0345: 0x03B9,  # combining greek ypogegrammeni
    0x03C2: 0x03C3,  # greek small letter final sigma
    0x03D0: 0x03B2,  # greek beta symbol
    0x03D1: 0x03B8,  # greek theta symbol
    0x03D5: 0x03C6,  # greek phi symbol
    0x03D6: 0x03C0,  # greek pi symbol
    0x03F0: 0x03BA,  # greek kappa symbol
    0x03F1: 0x03C1,  # greek rho symbol
    0x03F5: 0x03B5,  # greek lunate epsilon symbol
    0x1C80: 0x0432,  # cyrillic small letter rounded ve
    0x1C81: 0x0434,  # cyrillic small letter long-legged de
    0x1C82: 0x043E,  # cyrillic small letter narrow o
    0x1C83: 0x0441,  # cyrillic small letter wide es
    0x1C84: 0x0442,  # cyrillic small letter tall te
    0x1C85: 0x0442,  # cyrillic small letter three-legged te
    0x1C86: 0x044A,  # cyrillic small letter tall hard sign
    0x1C87: 0x0463,  # cyrillic small letter tall yat
    0x1C88: 0xA64B,  # cyrillic small letter unblended uk
}
_NEEDS_EXTRA_FOLD = re.compile("[" + "".join(map(chr, _EXTRA_FOLDS)) + "]")
# ASCII characters that are the canonical decomposition of a non-ASCII one (U+037E, U+1FEF).
_ASCII_SINGLETONS = frozenset(";`")


def fold_text(text: str) -> str:
    """Text as compared by SEARCH: canonically decomposed and case-folded, like Dovecot's
    ``uni_utf8_to_decomposed_titlecase`` (ASCII text only needs lower-casing)."""
    if text.isascii():
        return text.lower()
    folded = unicodedata.normalize("NFD", text).lower()
    if _NEEDS_EXTRA_FOLD.search(folded):
        folded = folded.translate(_EXTRA_FOLDS)
    return folded


class Needle:
    """A search string, folded once, and how to look for it in many texts."""

    def __init__(self, value: str) -> None:
        self.text = fold_text(value)
        # Folding a long text with str.translate is slow; only the extra folds whose result
        # occurs in the needle can change the answer, and str.replace is fast.
        self._replacements = [
            (chr(source), chr(target))
            for source, target in _EXTRA_FOLDS.items()
            if chr(target) in self.text
        ]
        # An ASCII needle absent from the lower-cased text can only appear after
        # decomposition as its last letter: "cafe" in "café" (e + U+0301). So decomposing
        # is needed only where the rest of the needle is followed by a non-ASCII letter.
        self._decomposition_hint: re.Pattern[str] | None = None
        if self.text.isascii() and len(self.text) > 1 and not _ASCII_SINGLETONS & set(self.text):
            self._decomposition_hint = re.compile(re.escape(self.text[:-1]) + "[^\x00-\x7f]")
        # Letters folding to ASCII (long s to "s") may sit anywhere: they void that shortcut.
        self._ascii_sources = [source for source, target in self._replacements if target.isascii()]

    def found_in(self, haystack: str) -> bool:
        """True if the needle occurs in `haystack` once both are folded."""
        if haystack.isascii():
            return self.text in haystack.lower()
        if self._decomposition_hint is not None and not any(
            source in haystack for source in self._ascii_sources
        ):
            lowered = haystack.lower()
            if self.text in lowered:
                return True
            if self._decomposition_hint.search(lowered) is None:
                return False
        folded = unicodedata.normalize("NFD", haystack).lower()
        for source, target in self._replacements:
            if source in folded:
                folded = folded.replace(source, target)
        return self.text in folded
