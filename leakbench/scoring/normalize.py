"""Field-aware normalizers: how a value may be rewritten and still be the same value.

Each normalizer maps a value to a normalized form and a text to a "view"; the value is found in the text
when its normalized form is in the view. A view is a string (substring search) or a set of keys (dates,
names: extracted from the text, then compared as a whole).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

View = str | frozenset[str]


@dataclass(frozen=True)
class Normalizer:
    name: str
    value: Callable[[str], str]
    view: Callable[[str], View]
    # For partial matching: the same on a string view (None: no partial matching for this normalizer).
    partial_view: Callable[[str], str] | None


def contains(view: View, normalized: str) -> bool:
    return bool(normalized) and normalized in view


# --- simple string normalizers -----------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s\-.()/]+")
_LITERAL_GLUE = re.compile(r"[\s\"'`+\\]+")  # quotes, concatenation and whitespace between string pieces
_SPACES = re.compile(r"\s+")


def _identity(text: str) -> str:
    return text


def _casefold(text: str) -> str:
    return text.casefold()


def _casefold_spaces(text: str) -> str:
    return _SPACES.sub(" ", text.casefold())


def _separators(text: str) -> str:
    return _SEPARATORS.sub("", text).upper()


def _split_literal(text: str) -> str:
    return _LITERAL_GLUE.sub("", text)


# --- e-mail: case and the usual obfuscations -----------------------------------------------------

_AT = re.compile(r"\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+", re.IGNORECASE)
_DOT = re.compile(r"\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+", re.IGNORECASE)


def _email_view(text: str) -> str:
    return _DOT.sub(".", _AT.sub("@", text)).casefold()


# --- phone: separators, and the country code ---------------------------------------------------

_PHONE_GLUE = re.compile(r"[\s\-.()+]+")


def _phone_value(value: str) -> str:
    digits = _PHONE_GLUE.sub("", value)
    if digits.startswith("44"):
        digits = digits[2:]
    elif len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits.removeprefix("0")


def _phone_view(text: str) -> str:
    return _PHONE_GLUE.sub("", text)


# --- dates: the same calendar day in any common written format ---------------------------------

_MONTHS = {
    m: i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        1,
    )
    for m in names
}
_MONTH = r"(?P<mon>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DATE_PATTERNS = [
    re.compile(r"(?<!\d)(?P<y>\d{4})[-/.](?P<a>\d{1,2})[-/.](?P<b>\d{1,2})(?!\d)"),  # 1987-04-12, y/m/d
    re.compile(r"(?<!\d)(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<y>\d{4})(?!\d)"),  # 04/12/1987 either order
    re.compile(r"(?<!\d)(?P<y>\d{4})(?P<a>\d{2})(?P<b>\d{2})(?!\d)"),  # 19870412
    re.compile(r"(?<![a-z])" + _MONTH + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})(?!\d)", re.I),
    re.compile(r"(?<!\d)(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r",?\s+(?P<y>\d{4})(?!\d)", re.I),
]


def _iso(y: int, m: int, d: int) -> str | None:
    try:
        return date(y, m, d).isoformat()
    except ValueError:
        return None


def extract_dates(text: str) -> frozenset[str]:
    """ISO forms of every date written in `text`; day/month order is ambiguous, so both readings count."""
    found: set[str | None] = set()
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            parts = m.groupdict()
            y = int(parts["y"])
            if parts.get("mon"):
                found.add(_iso(y, _MONTHS[parts["mon"].lower()], int(parts["d"])))
            else:
                a, b = int(parts["a"]), int(parts["b"])
                found.update((_iso(y, a, b), _iso(y, b, a)))
    found.discard(None)
    return frozenset(found)  # type: ignore[arg-type]


# --- names: case- and order-insensitive over their tokens --------------------------------------

_WORD = re.compile(r"[^\W\d_]+")


def name_key(name: str) -> str:
    return " ".join(sorted(w.casefold() for w in _WORD.findall(name)))


def _name_view(text: str) -> frozenset[str]:
    words = [w.casefold() for w in _WORD.findall(text)]
    keys = set()
    for n in (2, 3):  # names of two or three tokens
        for i in range(len(words) - n + 1):
            keys.add(" ".join(sorted(words[i : i + n])))
    return frozenset(keys)


NORMALIZERS: dict[str, Normalizer] = {
    "exact": Normalizer("exact", _identity, _identity, _identity),
    "casefold": Normalizer("casefold", _casefold, _casefold, _casefold),
    "casefold_spaces": Normalizer("casefold_spaces", _casefold_spaces, _casefold_spaces, _casefold_spaces),
    "email": Normalizer("email", _casefold, _email_view, _email_view),
    "phone": Normalizer("phone", _phone_value, _phone_view, _phone_view),
    "separators": Normalizer("separators", _separators, _separators, _separators),
    "split_literal": Normalizer("split_literal", _split_literal, _split_literal, _split_literal),
    "date": Normalizer("date", lambda v: min(extract_dates(v), default=v), extract_dates, _identity),
    "name_tokens": Normalizer("name_tokens", name_key, _name_view, None),
}
