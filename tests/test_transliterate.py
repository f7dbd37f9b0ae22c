"""Latin spellings of Arabic client names for slugs."""

from __future__ import annotations

import pytest

from generator.transliterate import arabic_to_latin


@pytest.mark.parametrize(
    ("arabic", "latin"),
    [
        ("عطور الرياض", "atur al riyad"),
        ("دار القهوة", "dar al qahwa"),
        ("جدة للأزياء", "jda lil aziya"),
        ("عبدالله للعود", "abdullah lil aud"),
        ("سوق البيت", "suq al bayt"),
        ("أزياء نورة", "aziya nura"),
        ("عُطُورٌ", "atur"),  # harakat are dropped
        ("عطـــور", "atur"),  # so is tatweel
        ("«الورد»، جدة", "«al wrd»، jda"),
        ("Nour 🎉", "Nour 🎉"),
    ],
)
def test_arabic_to_latin(arabic: str, latin: str) -> None:
    assert arabic_to_latin(arabic) == latin
