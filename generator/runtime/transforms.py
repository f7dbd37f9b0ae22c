"""The registry of named transforms that the field map in mapping.yaml refers to.

Every transform is a pure function ``(value, context) -> Transformed`` that never
raises on dirty data: what it cannot clean comes back with flags.
"""

from __future__ import annotations

from typing import Any

from .attribution import utm_channel
from .channels import channel_to_origin, event_key
from .cities import city_canonical
from .dates import iso_datetime, riyadh_date
from .emails import email_lower
from .ids import deal_name, id_text, sku_or_variant_id
from .money import money_sar, refund_total_sar
from .names import split_name
from .phone import phone_e164_sa
from .result import Transform, TransformContext, Transformed
from .stages import status_to_stage, ticket_status_to_stage
from .text import category_map, html_to_text, identity, list_join

__all__ = ["TRANSFORMS", "apply"]

# In the order of the transform catalogue (transforms.yaml in the generator).
TRANSFORMS: dict[str, Transform] = {
    "identity": identity,
    "id_text": id_text,
    "email_lower": email_lower,
    "phone_e164_sa": phone_e164_sa,
    "split_name": split_name,
    "city_canonical": city_canonical,
    "money_sar": money_sar,
    "refund_total_sar": refund_total_sar,
    "status_to_stage": status_to_stage,
    "iso_datetime": iso_datetime,
    "riyadh_date": riyadh_date,
    "sku_or_variant_id": sku_or_variant_id,
    "deal_name": deal_name,
    "utm_channel": utm_channel,
    "list_join": list_join,
    "category_map": category_map,
    "html_to_text": html_to_text,
    "event_key": event_key,
    "channel_to_origin": channel_to_origin,
    "ticket_status_to_stage": ticket_status_to_stage,
}


def apply(name: str, value: Any, context: TransformContext) -> Transformed:
    """Run the transform called ``name`` on ``value``.

    Args:
        name: A transform name from ``TRANSFORMS``.
        value: The input value as read from the payload.
        context: The transform context.

    Returns:
        The transform's result; for a name not in ``TRANSFORMS``, value None with
        the flag "unknown_transform".
    """
    transform = TRANSFORMS.get(name)
    if transform is None:
        return Transformed(value=None, raw=value, flags=("unknown_transform",))
    return transform(value, context)
