"""The playbook timings, steps, VIP bar and quiet hours, read from the integration spec.

Every number comes from ``integration/playbooks.yaml`` and ``integration/segments.yaml``
(the project's copy of the spec), never from this code: the abandoned-cart delay and
its allowed range, the post-purchase delay, the win-back window, each step's channel,
consent and offset, how long a discount code stays valid, the VIP entry and exit
values and the quiet hours. ``PLAYBOOK_CART_DELAY_HOURS`` may move the cart delay
within the spec's range. A file or value that cannot be used raises
:class:`PlaybookConfigError` with the file, the value, the rule and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

# The playbooks this service drives with timers; the others run in the CRM.
TIMED_PLAYBOOKS = ("abandoned_cart", "post_purchase", "win_back", "vip_care")
_UNIT_SECONDS = {"hours": 3600, "days": 86_400}
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Contact properties the playbooks write, by field map name (contact roll-ups).
CONTACT_FIELDS = ("playbook_step", "discount_code", "discount_expires_at", "last_checkout_at",
                  "last_cart_url", "last_cart_value_sar")
CART_DELAY_SETTING = "PLAYBOOK_CART_DELAY_HOURS"


class PlaybookConfigError(ValueError):
    """The spec or a playbook setting is invalid; the message names the value and the fix."""


@dataclass(frozen=True)
class Step:
    """One kept step of a playbook, as ``playbooks.yaml`` lists it.

    Attributes:
        playbook: The playbook's key.
        number: The step's number, from 1.
        channel: ``email``, ``whatsapp``, ``sms``, ``phone`` or ``internal``.
        kind: ``marketing``, ``service`` or ``internal``.
        consent: The channel whose consent the step needs, or ``none``.
        offset_seconds: Seconds after the playbook starts.
        template: The message template's name, or None.
        discount: Whether the step carries the playbook's discount code.
    """

    playbook: str
    number: int
    channel: str
    kind: str
    consent: str
    offset_seconds: int
    template: str | None
    discount: bool

    @property
    def marker(self) -> str:
        """The ``playbook_step`` value the CRM's workflow starts on.

        For example ``abandoned_cart:cart_reminder_1``: playbook, template and step number.
        """
        return f"{self.playbook}:{self.template or self.channel}_{self.number}"


@dataclass(frozen=True)
class Playbook:
    """One timed playbook.

    Attributes:
        key: ``abandoned_cart``, ``post_purchase``, ``win_back`` or ``vip_care``.
        enabled: Whether the spec switched it on.
        delay_seconds: The wait before it starts (for win-back, the first day of its window).
        max_delay_seconds: The last day of the window (win-back) or the delay's maximum.
        steps: The kept steps, in order.
        discount_hours: How long the playbook's code stays valid from its first step, or
            None when no step carries one.
    """

    key: str
    enabled: bool
    delay_seconds: int
    max_delay_seconds: int
    steps: tuple[Step, ...]
    discount_hours: int | None


EVERY_DAY = frozenset(range(7))


@dataclass(frozen=True)
class QuietWindow:
    """One quiet window in local time; ``end`` before ``start`` runs past midnight."""

    name: str
    days: frozenset[int]
    start: day_time
    end: day_time


@dataclass(frozen=True)
class QuietHours:
    """The quiet windows of ``playbooks.yaml`` in their time zone (Asia/Riyadh)."""

    zone: ZoneInfo
    windows: tuple[QuietWindow, ...] = ()

    def with_daily(self, daily: QuietHours) -> QuietHours:
        """Return these hours with ``daily``'s windows in place of every window of all 7 days.

        Windows of some days only, such as Friday prayer, stay, so a daily window set by
        ``WHATSAPP_QUIET_HOURS`` never drops them. Without an every-day window in the
        spec, ``daily``'s windows are added. The result keeps this object's time zone.
        """
        some_days = tuple(window for window in self.windows if window.days != EVERY_DAY)
        return QuietHours(self.zone, (*daily.windows, *some_days))

    def release_time(self, at: float) -> float | None:
        """Return when the quiet window that contains ``at`` ends, or None outside every window.

        Windows that touch or overlap are followed until a time outside all of them.
        """
        when = datetime.fromtimestamp(at, self.zone)
        moved = False
        for _ in range(len(self.windows) * 2 + 1):
            end = self._window_end(when)
            if end is None:
                break
            when, moved = end, True
        return when.timestamp() if moved else None

    def _window_end(self, when: datetime) -> datetime | None:
        for window in self.windows:
            for start_day in (when.date(), when.date() - timedelta(days=1)):
                if start_day.weekday() not in window.days:
                    continue
                start = datetime.combine(start_day, window.start, self.zone)
                end_day = start_day if window.end > window.start else start_day + timedelta(1)
                end = datetime.combine(end_day, window.end, self.zone)
                if start <= when < end:
                    return end
        return None


@dataclass(frozen=True)
class PlaybookConfig:
    """Everything the timers need from the spec.

    Attributes:
        playbooks: The timed playbooks by key.
        vip_threshold: Lifetime value in SAR from which a contact is VIP.
        vip_exit_threshold: Lifetime value below which a VIP contact leaves.
        quiet_hours: When marketing steps wait.
        service_window_hours: WhatsApp's customer-service window.
        fields: Field map name → CRM property of the contact, for ``CONTACT_FIELDS``.
    """

    playbooks: dict[str, Playbook]
    vip_threshold: Decimal | None
    vip_exit_threshold: Decimal | None
    quiet_hours: QuietHours
    service_window_hours: int
    fields: dict[str, str] = field(default_factory=dict)

    def playbook(self, key: str) -> Playbook | None:
        """Return the playbook when the spec has it and switched it on."""
        found = self.playbooks.get(key)
        return found if found is not None and found.enabled else None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise PlaybookConfigError(f"cannot read {path}: {error}. Set SPEC_DIR to the project's "
                                  "integration folder, or regenerate the spec with rabt."
                                  ) from error
    if not isinstance(data, dict):
        raise PlaybookConfigError(f"{path} is not a YAML mapping; regenerate it with rabt.")
    return data


def load_playbook_config(spec_dir: Path, mapping: Mapping[str, Any],
                         environ: Mapping[str, str] | None = None) -> PlaybookConfig:
    """Read the timed playbooks from ``spec_dir`` and check them.

    Args:
        spec_dir: The project's ``integration`` folder.
        mapping: The parsed field map, for the contact properties the playbooks write.
        environ: Settings; ``PLAYBOOK_CART_DELAY_HOURS`` moves the cart delay.

    Raises:
        PlaybookConfigError: a file, value or setting that cannot be used.
    """
    doc = _read(spec_dir / "playbooks.yaml")
    items = {str(item.get("key")): item for item in doc.get("playbooks") or []
             if isinstance(item, Mapping)}
    playbooks = {key: _playbook(items[key], spec_dir) for key in TIMED_PLAYBOOKS if key in items}
    cart = playbooks.get("abandoned_cart")
    override = (environ or {}).get(CART_DELAY_SETTING, "").strip()
    if cart is not None and override:
        playbooks["abandoned_cart"] = _with_cart_delay(cart, override, items["abandoned_cart"])
    threshold, exit_threshold = _vip(spec_dir)
    window = (doc.get("whatsapp") or {}).get("service_window_hours", 24)
    return PlaybookConfig(
        playbooks=playbooks, vip_threshold=threshold, vip_exit_threshold=exit_threshold,
        quiet_hours=_quiet_hours(doc.get("quiet_hours") or {}, spec_dir),
        service_window_hours=_whole(window, "whatsapp.service_window_hours", spec_dir, 1, 168),
        fields=_contact_fields(mapping))


def _whole(value: Any, where: str, spec_dir: Path, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PlaybookConfigError(
            f"{spec_dir / 'playbooks.yaml'}: {where} is {value!r}, but it must be a whole "
            f"number from {low} to {high}. Correct it in the spec and regenerate with rabt.")
    return value


def _playbook(data: Mapping[str, Any], spec_dir: Path) -> Playbook:
    key = str(data["key"])
    delay = data.get("delay") or {}
    unit = delay.get("unit")
    if unit not in _UNIT_SECONDS:
        raise PlaybookConfigError(
            f"{spec_dir / 'playbooks.yaml'}: {key}.delay.unit is {unit!r}, but it must be hours "
            "or days. Correct it in the spec and regenerate with rabt.")
    low = _whole(delay.get("min"), f"{key}.delay.min", spec_dir, 0, 10_000)
    high = _whole(delay.get("max"), f"{key}.delay.max", spec_dir, low, 10_000)
    default = _whole(delay.get("default"), f"{key}.delay.default", spec_dir, low, high)
    seconds = _UNIT_SECONDS[unit]
    steps = tuple(_step(key, item, spec_dir) for item in data.get("steps") or [])
    code = data.get("discount_code") or {}
    hours = code.get("expires_after_hours")
    first_delay = low if key == "win_back" else default
    return Playbook(key=key, enabled=bool(data.get("enabled")), delay_seconds=first_delay * seconds,
                    max_delay_seconds=high * seconds, steps=steps,
                    discount_hours=None if hours is None else
                    _whole(hours, f"{key}.discount_code.expires_after_hours", spec_dir, 1, 10_000))


def _step(playbook: str, data: Mapping[str, Any], spec_dir: Path) -> Step:
    offset = data.get("offset") or {}
    unit = offset.get("unit")
    if unit not in _UNIT_SECONDS:
        raise PlaybookConfigError(
            f"{spec_dir / 'playbooks.yaml'}: a step of {playbook} has the offset unit {unit!r}, "
            "but it must be hours or days. Correct it in the spec and regenerate with rabt.")
    value = _whole(offset.get("value"), f"{playbook}.steps[].offset.value", spec_dir, 0, 10_000)
    return Step(playbook=playbook, number=int(data.get("step") or 0),
                channel=str(data.get("channel")), kind=str(data.get("kind")),
                consent=str(data.get("consent") or "none"),
                offset_seconds=value * _UNIT_SECONDS[unit],
                template=data.get("template"), discount=bool(data.get("discount")))


def _with_cart_delay(cart: Playbook, text: str, data: Mapping[str, Any]) -> Playbook:
    problem = cart_delay_problem(text, data.get("delay") or {})
    if problem is not None:
        raise PlaybookConfigError(f"{CART_DELAY_SETTING}: {problem[0]} Fix: {problem[1]}")
    return replace(cart, delay_seconds=int(float(text) * 3600))


def cart_delay_problem(text: str, delay: Mapping[str, Any]) -> tuple[str, str] | None:
    """Check a ``PLAYBOOK_CART_DELAY_HOURS`` value against the spec's delay range.

    Args:
        text: The setting's value.
        delay: The abandoned-cart playbook's ``delay`` from ``playbooks.yaml``.

    Returns:
        None when the value is allowed, else the problem and the fix.
    """
    unit_hours = _UNIT_SECONDS.get(str(delay.get("unit")), 3600) // 3600
    low, high = delay.get("min", 1) * unit_hours, delay.get("max", 4) * unit_hours
    try:
        hours = float(text)
    except ValueError:
        hours = float("nan")
    if low <= hours <= high:
        return None
    return (f"{text!r} is not a number of hours from {low} to {high}, the range in "
            "integration/playbooks.yaml.",
            f"set a value in that range, or unset it to use the spec's default of "
            f"{delay.get('default', 2) * unit_hours} hours.")


def cart_delay_of_spec(spec_dir: Path) -> Mapping[str, Any] | None:
    """Return the abandoned-cart ``delay`` of ``spec_dir/playbooks.yaml``, or None without one."""
    try:
        data = yaml.safe_load((spec_dir / "playbooks.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    for item in (data or {}).get("playbooks") or [] if isinstance(data, dict) else []:
        if isinstance(item, Mapping) and item.get("key") == "abandoned_cart":
            delay = item.get("delay")
            return delay if isinstance(delay, Mapping) else None
    return None


def _vip(spec_dir: Path) -> tuple[Decimal | None, Decimal | None]:
    path = spec_dir / "segments.yaml"
    if not path.exists():
        return None, None
    data = (_read(path).get("vip_threshold") or {})
    values = []
    for name in ("threshold_sar", "exit_threshold_sar"):
        raw = data.get(name)
        try:
            amount = Decimal(str(raw))
        except InvalidOperation:
            amount = Decimal("NaN")
        if raw is None or isinstance(raw, bool) or not amount.is_finite() or amount <= 0:
            raise PlaybookConfigError(
                f"{path}: vip_threshold.{name} is {raw!r}, but it must be a positive amount "
                "in SAR. Correct it in the answers and regenerate with rabt.")
        values.append(amount)
    if values[1] > values[0]:
        raise PlaybookConfigError(
            f"{path}: vip_threshold.exit_threshold_sar ({values[1]}) is above threshold_sar "
            f"({values[0]}), so a contact would leave VIP as it enters. Regenerate with rabt.")
    return values[0], values[1]


def _quiet_hours(data: Mapping[str, Any], spec_dir: Path) -> QuietHours:
    where = spec_dir / "playbooks.yaml"
    try:
        zone = ZoneInfo(str(data.get("timezone") or "Asia/Riyadh"))
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise PlaybookConfigError(f"{where}: quiet_hours.timezone {data.get('timezone')!r} is "
                                  "not a time zone name such as Asia/Riyadh.") from error
    return QuietHours(zone, tuple(_window(item, where) for item in data.get("windows") or []))


def _window(data: Mapping[str, Any], where: Path) -> QuietWindow:
    name = str(data.get("name"))
    try:
        start, end = (day_time.fromisoformat(str(data[key])) for key in ("start", "end"))
        days = frozenset(_DAY_NAMES.index(str(day)) for day in data.get("days") or [])
    except (KeyError, ValueError) as error:
        raise PlaybookConfigError(
            f"{where}: the quiet window {name!r} needs days from {', '.join(_DAY_NAMES)} and "
            "start and end times as HH:MM. Correct it in the spec and regenerate.") from error
    if start == end:
        raise PlaybookConfigError(f"{where}: the quiet window {name!r} starts and ends at "
                                  f"{start:%H:%M}; give it a length or remove it.")
    return QuietWindow(name, days, start, end)


def parse_quiet_window(text: str, zone: ZoneInfo) -> QuietHours:
    """Read a daily quiet window written as ``HH:MM-HH:MM`` in ``zone``.

    Raises:
        ValueError: the text is not two different HH:MM times joined by ``-``.
    """
    parts = text.strip().split("-")
    try:
        start, end = (day_time.fromisoformat(part.strip()) for part in parts)
    except ValueError as error:
        raise ValueError("expected two times as HH:MM-HH:MM, such as 22:00-09:00") from error
    if start == end:
        raise ValueError("the start and end are the same time")
    return QuietHours(zone, (QuietWindow("daily", EVERY_DAY, start, end),))


def _contact_fields(mapping: Mapping[str, Any]) -> dict[str, str]:
    contact = (mapping.get("entities") or {}).get("contact") or {}
    found: dict[str, str] = {}
    for item in [*(contact.get("rollups") or []), *(contact.get("fields") or [])]:
        if isinstance(item, Mapping) and item.get("name") in CONTACT_FIELDS and item.get("target"):
            found[str(item["name"])] = str(item["target"])
    return found


def iso(at: float) -> str:
    """Return seconds since the epoch as an ISO 8601 UTC time, as CRM date-time fields take it."""
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
