"""Values in the form each Zoho field type takes.

The field map writes money as decimal text ("149.50") and times in ISO 8601, which
HubSpot takes as they are. Zoho checks types: currency, double and percent fields take
JSON numbers, integer fields whole numbers, date fields ``yyyy-MM-dd`` and datetime
fields ``yyyy-MM-ddTHH:mm:ss±HH:mm`` without fractions or ``Z``. The client reads each
module's field types once (``GET /crm/v8/settings/fields``) and converts with
:func:`to_zoho`. A value that cannot be converted is sent as it is, so Zoho's
INVALID_DATA names the field in the dead letter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

NUMBER_TYPES = frozenset({"currency", "double", "percent"})
INTEGER_TYPES = frozenset({"integer", "bigint"})
TYPED_FIELDS = NUMBER_TYPES | INTEGER_TYPES | {"date", "datetime"}
# A date written to a datetime field means midnight in Saudi Arabia (UTC+3, no DST).
RIYADH = timezone(timedelta(hours=3))


def to_zoho(record: Mapping[str, Any], field_types: Mapping[str, str]) -> dict[str, Any]:
    """Return ``record`` with each value converted to its field's type."""
    return {name: _convert(value, field_types.get(name)) for name, value in record.items()}


def _convert(value: Any, data_type: str | None) -> Any:
    if value is None or data_type is None:
        return value
    if value == "" and data_type in TYPED_FIELDS:
        # The field map clears a value with "" (a roll-up with no paid order left), which
        # Zoho rejects as INVALID_DATA in a typed field; null clears it.
        return None
    if data_type in NUMBER_TYPES:
        return _number(value, whole=False)
    if data_type in INTEGER_TYPES:
        return _number(value, whole=True)
    if data_type == "datetime":
        return _datetime(value)
    if data_type == "date":
        return _date(value)
    return value


def _number(value: Any, whole: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return value
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return value
    if whole:
        return int(number) if number == number.to_integral_value() else value
    return float(number)


def _datetime(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip().replace("Z", "+00:00")
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), RIYADH)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


def _date(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date().isoformat() \
            if len(value.strip()) > 10 else date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return value
