"""Arabic counted nouns after digits, and the money filters of the templates."""

from __future__ import annotations

import pytest

from generator.arabic_counts import arabic_count
from generator.jinja_ext import sar_amount, usd_amount


@pytest.mark.parametrize(("value", "expected"), [
    (1, "طلب واحد"), (2, "طلبين"), (3, "3 طلبات"), (10, "10 طلبات"), (11, "11 طلبًا"),
    (99, "99 طلبًا"), (100, "100 طلب"), (103, "103 طلبات"), (250, "250 طلبًا"),
    (6000, "6,000 طلب"), (200000, "200,000 طلب"), (0, "0 طلب"),
], ids=lambda value: str(value))
def test_arabic_count_order_forms(value: int, expected: str) -> None:
    assert arabic_count(value, "order") == expected


def test_arabic_count_fraction_singular() -> None:
    assert arabic_count(3.75, "riyal") == "3.75 ريال"


def test_arabic_count_thousands_accusative() -> None:
    assert arabic_count(2484, "riyal") == "2,484 ريالًا"
    assert arabic_count(128427, "execution") == "128,427 تنفيذًا"


@pytest.mark.parametrize(("noun", "nominative", "oblique"), [
    ("day", "يومان", "يومين"), ("hour", "ساعتان", "ساعتين"), ("order", "طلبان", "طلبين"),
    ("minute", "دقيقتان", "دقيقتين"), ("month", "شهران", "شهرين"),
])
def test_arabic_count_dual_case(noun: str, nominative: str, oblique: str) -> None:
    assert arabic_count(2, noun, "nominative") == nominative
    assert arabic_count(2, noun, "oblique") == oblique
    assert arabic_count(2, noun) == oblique


@pytest.mark.parametrize("value", [1, 5, 45, 100])
def test_arabic_count_case_only_dual(value: int) -> None:
    assert arabic_count(value, "day", "nominative") == arabic_count(value, "day", "oblique")


def test_arabic_count_unknown_case() -> None:
    with pytest.raises(ValueError, match="invalid Arabic case 'genitive'"):
        arabic_count(2, "day", "genitive")  # type: ignore[arg-type]


def test_arabic_count_unknown_noun() -> None:
    with pytest.raises(KeyError):
        arabic_count(5, "parcel")


def test_usd_amount_cents_and_separators() -> None:
    assert usd_amount(15781.32) == "$15,781.32"
    assert usd_amount(40) == "$40.00"
    assert usd_amount(662.5) == "$662.50"


def test_sar_amount_unchanged() -> None:
    assert sar_amount(59180) == "59,180"
