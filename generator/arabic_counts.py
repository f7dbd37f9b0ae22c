"""Arabic counted nouns after a number written in digits, for the Arabic documents.

In Modern Standard Arabic the noun after a number takes its form from the
number's last two digits. From 3 to 10 it is plural (5 طلبات, 103 طلبات), from
11 to 99 it is singular and accusative (250 طلبًا), and after 00, 01 or 02 it is
singular and genitive (6,000 طلب). One and two are written as words (طلب واحد,
طلبين), and a fraction takes the singular (3.75 ريال).

Only the dual changes with the grammatical case of the whole phrase: the
nominative ends in ان (مضى يومان) and the genitive and accusative end in ين
(بعد يومين, يحسب يومين). Every other form reads the same in all three cases when
written without vowel marks.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, NamedTuple

# "oblique" covers the genitive (after a preposition) and the accusative (an object).
Case = Literal["nominative", "oblique"]


class NounForms(NamedTuple):
    """The forms of one counted noun."""

    singular: str
    one: str
    # The dual in the oblique case, the default: most counts in these documents
    # follow a preposition or sit in the accusative.
    two: str
    plural: str
    accusative: str


NOUNS: dict[str, NounForms] = {
    "order": NounForms("طلب", "طلب واحد", "طلبين", "طلبات", "طلبًا"),
    "riyal": NounForms("ريال", "ريال واحد", "ريالين", "ريالات", "ريالًا"),
    "operation": NounForms("عملية", "عملية واحدة", "عمليتين", "عمليات", "عملية"),
    "execution": NounForms("تنفيذ", "تنفيذ واحد", "تنفيذين", "عمليات تنفيذ", "تنفيذًا"),
    "task": NounForms("مهمة", "مهمة واحدة", "مهمتين", "مهام", "مهمة"),
    "record": NounForms("سجل", "سجل واحد", "سجلين", "سجلات", "سجلًا"),
    "minute": NounForms("دقيقة", "دقيقة واحدة", "دقيقتين", "دقائق", "دقيقة"),
    "hour": NounForms("ساعة", "ساعة واحدة", "ساعتين", "ساعات", "ساعة"),
    "day": NounForms("يوم", "يوم واحد", "يومين", "أيام", "يومًا"),
    "month": NounForms("شهر", "شهر واحد", "شهرين", "أشهر", "شهرًا"),
    "run": NounForms("تشغيل", "تشغيل واحد", "تشغيلين", "عمليات تشغيل", "تشغيلًا"),
    "change": NounForms("تغيير", "تغيير واحد", "تغييرين", "تغييرات", "تغييرًا"),
    "file": NounForms("ملف", "ملف واحد", "ملفين", "ملفات", "ملفًا"),
    "time": NounForms("مرة", "مرة واحدة", "مرتين", "مرات", "مرة"),
    "store": NounForms("متجر", "متجر واحد", "متجرين", "متاجر", "متجرًا"),
}


def arabic_count(value: Any, noun: str, case: Case = "oblique") -> str:
    """Write ``value`` in digits with thousands separators, followed by the right form of ``noun``.

    Args:
        value: the count, an int, a float or a numeric string.
        noun: a key of ``NOUNS``, e.g. ``"order"``.
        case: ``"oblique"`` after a preposition or as an object (بعد يومين), or
            ``"nominative"`` as a subject or predicate (مضى يومان).

    Returns:
        The count and its noun, e.g. ``"250 طلبًا"``; one and two become words.

    Raises:
        KeyError: when ``noun`` is not in ``NOUNS``.
        ValueError: when ``case`` is neither ``"oblique"`` nor ``"nominative"``.
    """
    if case not in ("oblique", "nominative"):
        raise ValueError(f"invalid Arabic case {case!r}: use 'oblique' or 'nominative'")
    forms = NOUNS[noun]
    amount = Decimal(str(value))
    if amount != amount.to_integral_value():
        return f"{amount:,} {forms.singular}"
    number = int(amount)
    if number == 1:
        return forms.one
    if number == 2:
        return _nominative_dual(forms.two) if case == "nominative" else forms.two
    last_two = number % 100
    if 3 <= last_two <= 10:
        form = forms.plural
    elif 11 <= last_two <= 99:
        form = forms.accusative
    else:
        form = forms.singular
    return f"{number:,} {form}"


def _nominative_dual(oblique: str) -> str:
    """Turn an oblique dual (يومين, ساعتين) into the nominative one (يومان, ساعتان)."""
    return oblique.removesuffix("ين") + "ان"
