"""Case- and diacritics-folding that keeps every character at its offset.

Rules match on folded text ("naléhavé" and "NALEHAVE" both become "nalehave"); evidence is cut
from the unfolded text at the same offsets, so an agent sees what the sender wrote.
"""

from __future__ import annotations

import unicodedata

# Letters with no canonical decomposition that readers still see as accented Latin letters.
_EXTRA_LETTERS = {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ø": "O", "ø": "o", "Ħ": "H", "ħ": "h"}
# Typographic variants mail clients substitute (curly apostrophes, en dashes, no-break spaces).
_PUNCTUATION = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u02bc": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u00a0": " ",
    "\u202f": " ",
    "\u2007": " ",
    "\u200b": " ",
    "\u0130": "I",  # "İ".lower() is two characters; the only letter whose lower() changes length
}


def _fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0x00C0, 0x0250):
        base = unicodedata.normalize("NFKD", chr(code))[0]
        if base != chr(code) and base.isascii():
            table[code] = base
    for source, target in (_EXTRA_LETTERS | _PUNCTUATION).items():
        table[ord(source)] = target
    return table


_TABLE = _fold_table()


def normalize(text: str) -> str:
    """NFC-normalize, so a decomposed "e" + U+0301 folds like a precomposed "é"."""
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def strip_marks(text: str) -> str:
    """Replace accented Latin letters and typographic punctuation one for one; keep the case."""
    return text if text.isascii() else text.translate(_TABLE)


def fold(text: str) -> str:
    """Lower-case, accent-free text of exactly the same length as `normalize(text)`."""
    return strip_marks(normalize(text)).lower()
