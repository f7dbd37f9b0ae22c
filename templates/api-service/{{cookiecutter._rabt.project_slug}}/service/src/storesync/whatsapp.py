"""Optional direct WhatsApp sender through the WhatsApp Cloud API, for CRMs that cannot send.

Off unless ``WHATSAPP_PHONE_NUMBER_ID`` is set. It sends only approved template
messages (``POST /{version}/{phone-number-id}/messages`` with ``type: "template"``):
a playbook reminder is outside the 24-hour customer-service window, where WhatsApp
accepts nothing else, and the service never sees the customer's own messages, so it
never assumes the window is open. The playbook runner has already checked the
contact's WhatsApp opt-in through the consent gate. A step that falls due in the
quiet hours (Asia/Riyadh) is deferred to the window's end, never dropped.

Errors, read from the ``error.code`` of Meta's error body: a rate limit (130429,
131056) defers the step; a template that does not exist or is paused (132001,
132015), a free-form message outside the window (131047) or an undeliverable number
(131026) fails the step without a retry, and the metrics count it; a server error or
a rejected access token raises, so the timer is tried again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from .logs import mask_phone
from .playbook_config import QuietHours, Step, parse_quiet_window
from .playbooks import SendOutcome

log = logging.getLogger("storesync.whatsapp")

DEFAULT_BASE_URL = "https://graph.facebook.com"
# NOTE: the Graph API version is the client's choice and Meta retires old ones; this
# default is an example. Set WHATSAPP_API_VERSION to a version the app is on.
DEFAULT_API_VERSION = "v21.0"
DEFAULT_LANGUAGE = "ar"
DEFAULT_TIMEOUT_SECONDS = 10.0
RATE_LIMIT_RETRY_SECONDS = 60.0
VERSION_PATTERN = re.compile(r"^v\d{1,3}\.\d{1,2}$")
PHONE_NUMBER_ID_PATTERN = re.compile(r"^\d{5,20}$")
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
RATE_LIMIT_CODES = frozenset({130429, 131056})
RIYADH = ZoneInfo("Asia/Riyadh")
# The start of every secret placeholder in .env.example.
PLACEHOLDER = "replace-with"
SETTINGS = ("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_API_VERSION",
            "WHATSAPP_BASE_URL", "WHATSAPP_TEMPLATE_LANGUAGE", "WHATSAPP_QUIET_HOURS")


class WhatsAppUnavailable(Exception):
    """The Cloud API failed or rejected the access token; the step is tried again later."""


class WhatsAppSettingsError(ValueError):
    """One or more WhatsApp settings are invalid.

    Attributes:
        problems: (variable, problem, fix) for each invalid setting.
    """

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        super().__init__(" ".join(f"{name}: {problem} Fix: {fix}"
                                  for name, problem, fix in problems))


@dataclass(frozen=True)
class WhatsAppSettings:
    """The direct sender's settings.

    ``quiet_hours`` is the daily window of ``WHATSAPP_QUIET_HOURS``, which replaces the
    spec's every-day windows only (see :meth:`QuietHours.with_daily`); None keeps the
    spec's windows as they are.
    """

    access_token: str
    phone_number_id: str
    api_version: str = DEFAULT_API_VERSION
    base_url: str = DEFAULT_BASE_URL
    language: str = DEFAULT_LANGUAGE
    quiet_hours: QuietHours | None = None

    def __repr__(self) -> str:
        return f"WhatsAppSettings(phone_number_id={self.phone_number_id!r}, token=<hidden>)"


def load_whatsapp_settings(environ: Mapping[str, str],
                           zone: ZoneInfo | None = None) -> WhatsAppSettings | None:
    """Read the sender's settings; None when ``WHATSAPP_PHONE_NUMBER_ID`` is not set.

    Raises:
        WhatsAppSettingsError: every invalid value, named with its rule and fix, at once.
    """
    values = {name: environ.get(name, "").strip() for name in SETTINGS}
    if not values["WHATSAPP_PHONE_NUMBER_ID"]:
        if values["WHATSAPP_ACCESS_TOKEN"]:
            raise WhatsAppSettingsError([(
                "WHATSAPP_PHONE_NUMBER_ID", "is not set, but WHATSAPP_ACCESS_TOKEN is.",
                "set the phone number id from WhatsApp Manager to send directly, or unset "
                "WHATSAPP_ACCESS_TOKEN.")])
        return None
    problems: list[tuple[str, str, str]] = []
    if not values["WHATSAPP_ACCESS_TOKEN"] or PLACEHOLDER in values["WHATSAPP_ACCESS_TOKEN"]:
        problems.append(("WHATSAPP_ACCESS_TOKEN", "is not set, or is still the placeholder "
                         "from .env.example.", "set the system user's access token with the "
                         "whatsapp_business_messaging permission."))
    phone_id = values["WHATSAPP_PHONE_NUMBER_ID"]
    if not PHONE_NUMBER_ID_PATTERN.match(phone_id):
        problems.append(("WHATSAPP_PHONE_NUMBER_ID", f"{phone_id!r} is not a phone number id.",
                         "use the numeric id WhatsApp Manager shows for the number, not the "
                         "phone number itself."))
    version = values["WHATSAPP_API_VERSION"] or DEFAULT_API_VERSION
    if not VERSION_PATTERN.match(version):
        problems.append(("WHATSAPP_API_VERSION", f"{version!r} is not a Graph API version.",
                         f"write it as v and the version number, e.g. {DEFAULT_API_VERSION}."))
    base_url = (values["WHATSAPP_BASE_URL"] or DEFAULT_BASE_URL).rstrip("/")
    if not re.match(r"^https?://[^/\s]+$", base_url):
        problems.append(("WHATSAPP_BASE_URL", f"{base_url!r} is not a scheme and host.",
                         f"use a URL with no path, e.g. {DEFAULT_BASE_URL}."))
    language = values["WHATSAPP_TEMPLATE_LANGUAGE"] or DEFAULT_LANGUAGE
    if not LANGUAGE_PATTERN.match(language):
        problems.append(("WHATSAPP_TEMPLATE_LANGUAGE", f"{language!r} is not a template "
                         "language code.", "use the code the templates were approved in, "
                         "e.g. ar or en_US."))
    quiet = None
    if values["WHATSAPP_QUIET_HOURS"]:
        try:
            quiet = parse_quiet_window(values["WHATSAPP_QUIET_HOURS"], zone or RIYADH)
        except ValueError as error:
            problems.append(("WHATSAPP_QUIET_HOURS", f"{values['WHATSAPP_QUIET_HOURS']!r}: "
                             f"{error}.", "give Asia/Riyadh times as HH:MM-HH:MM, e.g. "
                             "22:00-09:00, or unset it to use the spec's daily quiet hours."))
    if problems:
        raise WhatsAppSettingsError(problems)
    return WhatsAppSettings(values["WHATSAPP_ACCESS_TOKEN"], phone_id, version, base_url,
                            language, quiet)


class WhatsAppSender:
    """Sends playbook steps as WhatsApp template messages."""

    channel = "whatsapp"

    def __init__(self, settings: WhatsAppSettings, quiet_hours: QuietHours,
                 transport: httpx.BaseTransport | None = None) -> None:
        """Build the sender with the spec's ``quiet_hours`` and the settings' daily window."""
        self.settings = settings
        self.quiet_hours = quiet_hours if settings.quiet_hours is None \
            else quiet_hours.with_daily(settings.quiet_hours)
        self._client = httpx.Client(
            base_url=settings.base_url, timeout=DEFAULT_TIMEOUT_SECONDS, transport=transport,
            headers={"Authorization": f"Bearer {settings.access_token}"})

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def send_step(self, step: Step, payload: Mapping[str, Any], now: float) -> SendOutcome:
        """Send the step's template to the contact's phone, or say why not.

        Returns:
            ``deferred`` with the end of the quiet window or a rate-limit retry time,
            ``sent``, or ``failed`` with the reason.

        Raises:
            httpx.HTTPError: the API could not be reached.
            WhatsAppUnavailable: a server error, or the access token was rejected.
        """
        release = self.quiet_hours.release_time(now)
        if release is not None:
            return SendOutcome("deferred", retry_at=release, reason="quiet hours")
        phone = (payload.get("contact") or {}).get("phone")
        if not step.template:
            return SendOutcome("failed", reason="the step has no approved template")
        if not phone:
            return SendOutcome("failed", reason="the contact has no phone")
        response = self._client.post(f"/{self.settings.api_version}/"
                                     f"{self.settings.phone_number_id}/messages",
                                     json=self.message(step, payload, str(phone)))
        if response.status_code < 300:
            log.info("WhatsApp template sent", extra={"template": step.template,
                                                      "phone": mask_phone(str(phone))})
            return SendOutcome("sent")
        code, detail = _error(response)
        if response.status_code >= 500 or response.status_code in (401, 403):
            # The step is tried again later, so a server error or a token being replaced
            # delays messages instead of dropping them.
            raise WhatsAppUnavailable(f"WhatsApp returned {response.status_code} (error {code}): "
                                      f"{detail}")
        if response.status_code == 429 or code in RATE_LIMIT_CODES:
            return SendOutcome("deferred", retry_at=now + RATE_LIMIT_RETRY_SECONDS,
                               reason=f"rate limit ({code})")
        log.warning("WhatsApp template not sent", extra={
            "template": step.template, "phone": mask_phone(str(phone)), "error_code": code,
            "status": response.status_code, "detail": detail})
        return SendOutcome("failed", reason=f"WhatsApp error {code}: {detail}")

    def message(self, step: Step, payload: Mapping[str, Any], phone: str) -> dict[str, Any]:
        """Build the template message body.

        The body parameters are the recovery link and the discount code, in that order,
        when the payload has them. NOTE: the approved template must take exactly these
        parameters; Meta rejects a count that differs from the template.
        """
        parameters = [{"type": "text", "text": str(value)}
                      for value in (payload.get("url"),
                                    payload.get("discount_code") if step.discount else None)
                      if value]
        template: dict[str, Any] = {"name": step.template,
                                    "language": {"code": self.settings.language}}
        if parameters:
            template["components"] = [{"type": "body", "parameters": parameters}]
        return {"messaging_product": "whatsapp", "recipient_type": "individual",
                "to": phone.lstrip("+"), "type": "template", "template": template}


def _error(response: httpx.Response) -> tuple[int | None, str]:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return None, response.text[:200]
    details = (error.get("error_data") or {}).get("details") or error.get("message") or ""
    code = error.get("code")
    return (int(code) if isinstance(code, int) else None), str(details)[:200]
