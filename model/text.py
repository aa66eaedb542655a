"""Text normalisation shared by training and serving, so both see identical input."""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\u00ad]")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^>]{1,200}>")
_WHITESPACE = re.compile(r"\s+")
_REPEAT = re.compile(r"(.)\1{4,}")


def clean_text(text: str) -> str:
    """Normalise one review: NFKC (full-width to half-width), drop BOMs, zero-width and
    control characters, URLs and HTML tags, squeeze runs of one character to three, and
    collapse whitespace. Returns ``""`` for text with nothing left."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    if not text.isprintable():  # C-level check; only then look at each character
        text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    text = _URL.sub(" ", text)
    text = _HTML_TAG.sub(" ", text)
    text = _REPEAT.sub(r"\1\1\1", text)
    return _WHITESPACE.sub(" ", text).strip()
