"""Readable Latin spellings of Arabic names, for deriving project slugs.

Arabic is written without short vowels, so no transliteration can be exact. Plain
letter-by-letter tables (Unidecode) drop the long vowels too and turn
``عطور الرياض`` into ``twr-lryd``. This one keeps long vowels, separates the article
(``al-``, ``lil-``) and spells a few very common name words the usual way, giving
``atur-al-riyad``: not a formal romanization, but a folder name a person can read.
"""

from __future__ import annotations

import re
import unicodedata

_CONSONANTS = {
    "ب": "b", "ت": "t", "ث": "th", "ج": "j", "ح": "h", "خ": "kh", "د": "d", "ذ": "dh",
    "ر": "r", "ز": "z", "س": "s", "ش": "sh", "ص": "s", "ض": "d", "ط": "t", "ظ": "z",
    "غ": "gh", "ف": "f", "ق": "q", "ك": "k", "ل": "l", "م": "m", "ن": "n", "ه": "h",
    "گ": "g", "پ": "p", "چ": "ch", "ڤ": "v",
}
_VOWEL_LETTERS = {"ا": "a", "أ": "a", "إ": "i", "آ": "a", "ى": "a", "ة": "a", "ؤ": "u",
                  "ئ": "e", "ء": ""}
# Words whose usual Latin spelling the letter rules cannot guess.
_WORDS = {
    "الله": "allah", "عبدالله": "abdullah", "عبد": "abd", "محمد": "mohammed",
    "أحمد": "ahmed", "احمد": "ahmed", "متجر": "matjar", "متاجر": "matajir",
    "شركة": "sharika", "مؤسسة": "muassasa", "بيت": "bayt", "دار": "dar", "قهوة": "qahwa",
}
_ARTICLES = (("لل", "lil"), ("بال", "bil"), ("وال", "wal"), ("ال", "al"))
# Harakat, shadda, sukun, superscript alef and tatweel carry no letter of their own.
_MARKS = re.compile("[\u064b-\u065f\u0670\u0640]")
# Runs of Arabic letters; Arabic punctuation and digits are left to the caller.
_ARABIC_WORD = re.compile("[\u0621-\u064a\u0671-\u06d3]+")


def _letter(word: str, index: int) -> str:
    char = word[index]
    before = word[index - 1] if index > 0 else ""
    after = word[index + 1] if index + 1 < len(word) else ""
    if char in ("و", "ي"):
        semivowel = "w" if char == "و" else "y"
        vowel = "u" if char == "و" else "i"
        if not before or before in "اويى":
            return semivowel
        if after in ("ا", "ى", "ة"):
            return vowel + semivowel if char == "ي" else semivowel
        return vowel
    if char == "ع":
        return "a" if not before or before in _CONSONANTS else ""
    if char in _VOWEL_LETTERS:
        return _VOWEL_LETTERS[char]
    return _CONSONANTS.get(char, char)


def _word(word: str) -> list[str]:
    if word in _WORDS:
        return [_WORDS[word]]
    for prefix, latin in _ARTICLES:
        rest = word[len(prefix):]
        if word.startswith(prefix) and len(rest) >= 2:
            return [latin, *_word(rest)]
    return ["".join(_letter(word, index) for index in range(len(word)))]


def arabic_to_latin(text: str) -> str:
    """Spell the Arabic words of ``text`` in Latin letters; other characters pass through."""
    text = _MARKS.sub("", unicodedata.normalize("NFC", text))
    return _ARABIC_WORD.sub(lambda match: " ".join(_word(match.group())), text)
