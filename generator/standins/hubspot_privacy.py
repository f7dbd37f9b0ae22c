"""Subscription statuses (communication preferences v4) and GDPR delete of the stand-in.

Endpoints, with the shapes of HubSpot's API reference:

* ``POST /communication-preferences/v4/statuses/batch/read?channel=EMAIL`` with
  ``{"inputs": [subscriber, ...]}``: one result per subscriber with its ``statuses``
  (``channel``, ``status``, ``subscriptionId``, ``timestamp``, ``legalBasis`` ...);
* ``POST /communication-preferences/v4/statuses/{subscriberIdString}`` with
  ``{channel, statusState, subscriptionId, legalBasis, legalBasisExplanation}`` sets
  one status (tests use it to play the part of a contact who changes preferences);
* ``POST /communication-preferences/v4/statuses/{subscriberIdString}/unsubscribe-all
  ?channel=EMAIL``: every subscription type of the channel becomes ``NOT_SUBSCRIBED``;
* ``POST /crm/v3/objects/contacts/gdpr-delete`` with ``{objectId, idProperty?}``:
  deletes the contact and returns 204 with no body. With ``idProperty: email`` an
  address that no contact has is blocklisted, and the status is still 204.

The subscriber is the email address for EMAIL and the phone number for SMS and
WHATSAPP. NOTE: the subscription type ids below are the stand-in's own; a real
account has its own ids, which ``GET /communication-preferences/v4/definitions`` lists.
NOTE: HubSpot documents the 204 of GDPR delete; the 404 for an unknown record id is
assumed, as for the other record endpoints.
"""

from __future__ import annotations

from typing import Any

from .hubspot_errors import not_found, validation_error
from .hubspot_http import NO_CONTENT, Call
from .hubspot_preferences import PreferenceStore, Status
from .hubspot_records import Record

CHANNELS = ("EMAIL", "SMS", "WHATSAPP")
STATUS_STATES = ("SUBSCRIBED", "NOT_SUBSCRIBED", "NOT_SPECIFIED")
# The stand-in's one marketing subscription type per channel.
SUBSCRIPTION_TYPES = {"EMAIL": 7001, "SMS": 7002, "WHATSAPP": 7003}
BATCH_LIMIT = 100


def _subscriber(channel: str, raw: Any) -> str:
    text = str(raw or "").strip()
    if not text:
        raise validation_error("subscriberIdString must not be empty")
    return text.lower() if channel == "EMAIL" else text


def _channel(call: Call, value: Any = None) -> str:
    channel = str(value if value is not None else call.query_value("channel") or "").upper()
    if channel not in CHANNELS:
        raise validation_error(f"channel must be one of {', '.join(CHANNELS)}, got "
                               f"{channel or 'nothing'}")
    return channel


def _status_json(channel: str, subscriber: str, subscription_id: int,
                 status: Status) -> dict[str, Any]:
    return {"channel": channel, "subscriberIdString": subscriber,
            "subscriptionId": subscription_id, "status": status.status,
            "timestamp": status.timestamp, "source": status.source,
            "legalBasis": status.legal_basis, "legalBasisExplanation": status.explanation,
            "subscriptionName": f"Marketing {channel.lower()}"}


def _envelope(state: Any, results: list[Any]) -> dict[str, Any]:
    now = state.now_iso()
    return {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}


def batch_read(state: Any, call: Call) -> tuple[int, Any]:
    """``POST /communication-preferences/v4/statuses/batch/read?channel=...``."""
    channel = _channel(call)
    inputs = call.body_object().get("inputs")
    if not isinstance(inputs, list) or not 1 <= len(inputs) <= BATCH_LIMIT:
        raise validation_error(f"inputs must be a list of 1 to {BATCH_LIMIT} subscribers")
    store: PreferenceStore = state.preferences
    results = []
    for raw in inputs:
        subscriber = _subscriber(channel, raw)
        held = store.statuses.get((channel, subscriber), {})
        results.append({"subscriberIdString": subscriber, "statuses": [
            _status_json(channel, subscriber, sub_id, status) for sub_id, status in held.items()]})
    return 200, _envelope(state, results)


def set_status(state: Any, call: Call) -> tuple[int, Any]:
    """``POST /communication-preferences/v4/statuses/{subscriberIdString}``."""
    body = call.body_object()
    channel = _channel(call, body.get("channel"))
    subscriber = _subscriber(channel, call.path.get("subscriber"))
    wanted = str(body.get("statusState") or "").upper()
    if wanted not in STATUS_STATES:
        raise validation_error(f"statusState must be one of {', '.join(STATUS_STATES)}")
    subscription_id = body.get("subscriptionId")
    if subscription_id != SUBSCRIPTION_TYPES[channel]:
        raise validation_error(f"subscriptionId {subscription_id} is not a {channel} "
                               "subscription type of this account")
    status = Status(wanted, state.now_iso(), body.get("legalBasis"),
                    body.get("legalBasisExplanation"))
    state.preferences.statuses.setdefault((channel, subscriber), {})[subscription_id] = status
    return 200, _envelope(state, [_status_json(channel, subscriber, subscription_id, status)])


def unsubscribe_all(state: Any, call: Call) -> tuple[int, Any]:
    """``POST /communication-preferences/v4/statuses/{subscriberIdString}/unsubscribe-all``."""
    channel = _channel(call)
    subscriber = _subscriber(channel, call.path.get("subscriber"))
    held = state.preferences.statuses.setdefault((channel, subscriber), {})
    now = state.now_iso()
    for sub_id in {*held, SUBSCRIPTION_TYPES[channel]}:
        held[sub_id] = Status("NOT_SUBSCRIBED", now, source="UNSUBSCRIBE_ALL")
    return 200, _envelope(state, [_status_json(channel, subscriber, sub_id, status)
                                  for sub_id, status in held.items()])


def gdpr_delete(state: Any, call: Call) -> tuple[int, Any]:
    """``POST /crm/v3/objects/contacts/gdpr-delete``."""
    body = call.body_object()
    object_id = str(body.get("objectId") or "").strip()
    if not object_id:
        raise validation_error("objectId is required")
    id_property = body.get("idProperty")
    if id_property not in (None, "", "email", "hs_object_id"):
        raise validation_error("idProperty must be email or left out")
    record = state.records.find("contacts", object_id, id_property or None)
    if record is None:
        if id_property == "email":
            state.preferences.blocklist.add(object_id.lower())
            return NO_CONTENT, None
        raise not_found(f"contact {object_id} does not exist")
    _remove(state, record)
    return NO_CONTENT, None


def _remove(state: Any, record: Record) -> None:
    """Delete a contact, its associations and the statuses of its email and phone."""
    records = state.records
    del records.records[record.obj][record.id]
    before = dict(record.properties)
    record.properties = {}
    records._reindex(record, before)
    for to_obj, ends in record.associations.items():
        for other_id in ends:
            other = records.records.get(to_obj, {}).get(other_id)
            if other is not None:
                other.associations.get(record.obj, {}).pop(record.id, None)
    preferences: PreferenceStore = state.preferences
    email = before.get("email")
    if email:
        preferences.blocklist.add(email.lower())
        preferences.statuses.pop(("EMAIL", email.lower()), None)
    preferences.deleted.append({"id": record.id, "email": email or ""})
