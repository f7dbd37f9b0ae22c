"""City names to their canonical English and Arabic names, through an alias table.

The table is the data file ``cities.yaml`` next to this module.
NOTE: the table is partly unconfirmed: apart from Jeddah, its spellings are common
usage without a source, so projects extend it in that file.
"""

# Arabic letters in this module are its data, not look-alikes of Latin letters.
# ruff: noqa: RUF001, RUF002, RUF003

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .digits import strip_format_marks
from .result import TransformContext, Transformed

__all__ = ["CITIES_FILE", "City", "city_canonical", "city_key", "find_city", "load_cities"]

CITIES_FILE = Path(__file__).parent / "cities.yaml"

# Letters unified before lookup: taa marbuta and haa, alef maqsura and yaa, and the
# Persian yaa and kaf that Persian keyboards type. Hamza on alef is removed with the
# other combining marks after NFKD decomposition, so أ إ آ all become ا.
_LETTERS = str.maketrans({"ة": "ه", "ى": "ي", "ی": "ي", "ک": "ك"})
_TATWEEL = "\u0640"
_APOSTROPHES = re.compile("['\u2018\u2019\u02bc\u02bb`\u00b4]")
_SEPARATORS = re.compile(r"[\s\-_./\\()]+")
# Words that only mean "city": dropped wherever they appear, so "Riyadh City" and
# "مدينة الرياض" find Riyadh. "المدينة", with the article, is Madinah and is kept.
_GENERIC_WORDS = frozenset({"city", "مدينه"})
_LATIN_ARTICLES = frozenset({"al", "el"})
_ARABIC_ARTICLE = "ال"
# Text after a comma is usually the region or the country ("Jeddah, Makkah Province").
_COMMAS = re.compile("[,\u060c]")


@dataclass(frozen=True)
class City:
    """One canonical city.

    Attributes:
        en: The canonical English name, such as "Jeddah".
        ar: The canonical Arabic name, such as "جدة".
    """

    en: str
    ar: str


def city_key(text: str) -> str:
    """Normalise a city name to its lookup key.

    Lower-cases, removes bidi marks, diacritics and tatweel, unifies ة/ه, أ/إ/آ→ا
    and ى→ي, removes apostrophes, turns dashes, dots and underscores into spaces,
    drops words that only mean "city", drops the articles "al", "el" and "ال", and
    collapses spaces.

    Args:
        text: A city name as typed, for example "Al-Khobar" or "جدّة".

    Returns:
        The key, such as "khobar" or "جده"; empty when no word is left.
    """
    text = unicodedata.normalize("NFKD", strip_format_marks(text).casefold())
    text = "".join(char for char in text if not unicodedata.combining(char))
    text = text.replace(_TATWEEL, "").translate(_LETTERS)
    text = _APOSTROPHES.sub("", text)
    words = [word for word in _SEPARATORS.split(text) if word and word not in _GENERIC_WORDS]
    return " ".join(word for word in map(_without_article, words) if word)


def load_cities(path: Path = CITIES_FILE) -> dict[str, City]:
    """Read an alias table and index it by normalised alias.

    Args:
        path: A YAML file with a ``cities`` list of ``en``, ``ar`` and ``aliases``.

    Returns:
        A dict from ``city_key`` of every name and alias to its city.

    Raises:
        ValueError: Two cities share a normalised alias, or a name is empty.
    """
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    index: dict[str, City] = {}
    for entry in document["cities"]:
        city = City(en=str(entry["en"]), ar=str(entry["ar"]))
        for name in (city.en, city.ar, *(entry.get("aliases") or ())):
            key = city_key(str(name))
            if not key:
                raise ValueError(f"{path}: {name!r} of {city.en} is empty after normalising")
            known = index.setdefault(key, city)
            if known != city:
                raise ValueError(
                    f"{path}: {name!r} of {city.en} normalises to {key!r}, "
                    f"which already names {known.en}"
                )
    return index


def find_city(text: str) -> City | None:
    """Look ``text`` up in the alias table of ``CITIES_FILE``.

    The whole text is tried first, then the part before its first comma, so
    "Riyadh, Saudi Arabia" and "جدة، السعودية" are found.

    Args:
        text: A city name as typed.

    Returns:
        The canonical city, or None when the table has no such name.
    """
    index = _default_index()
    for candidate in (text, _COMMAS.split(text, maxsplit=1)[0]):
        key = city_key(candidate)
        if key in index:
            return index[key]
    return None


def city_canonical(value: Any, context: TransformContext) -> Transformed:
    """Transform ``city_canonical``: write ``{"en": ..., "ar": ..., "raw": ...}``.

    Args:
        value: The city as sent.
        context: The transform context (unused; every transform takes one).

    Returns:
        The canonical names with the raw input beside them. An unknown city gets
        ``{"en": None, "ar": None, "raw": value}`` with "unknown_city"; empty input
        gets the same shape with "missing"; input that is not text gets
        "invalid_value" and "kept_raw".
    """
    empty = {"en": None, "ar": None, "raw": value}
    if value is None or (isinstance(value, str) and not strip_format_marks(value).strip()):
        return Transformed(value=empty, raw=value, flags=("missing",))
    if not isinstance(value, str):
        return Transformed(value=empty, raw=value, flags=("invalid_value", "kept_raw"))

    city = find_city(value)
    if city is None:
        return Transformed(value=empty, raw=value, flags=("unknown_city",))
    return Transformed(value={"en": city.en, "ar": city.ar, "raw": value}, raw=value)


@cache
def _default_index() -> dict[str, City]:
    return load_cities()


def _without_article(word: str) -> str:
    if word in _LATIN_ARTICLES or word == _ARABIC_ARTICLE:
        return ""
    # Two letters at least must remain, so short words that merely start with
    # the letters alef and lam keep them.
    if word.startswith(_ARABIC_ARTICLE) and len(word) > len(_ARABIC_ARTICLE) + 1:
        return word[len(_ARABIC_ARTICLE):]
    return word
