"""The typed plan that ``rabt crm plan`` prints and ``rabt crm apply`` carries out.

Each desired thing in the CRM (property group, property, pipeline, stage, list,
custom field, picklist, view) becomes one ``PlanItem`` with exactly one action:

- ``create``: missing in the CRM; apply creates it and records its id.
- ``update``: present, with field-level ``changes`` (old → new) that the API allows.
- ``unchanged``: present and equal to the desired state.
- ``manual``: a difference the API cannot make, or that Rabt must not make on an
  item it did not create; ``manual`` contains the steps for a person. ``drift`` is
  True when Rabt read the item in the CRM and found it different (a missing Zoho
  Stage value, a field type it may not change), and False for a step it cannot
  check (a Zoho custom view, a HubSpot event definition, a pipeline the API did
  not return).

``rabt crm plan`` exits 4 exactly when an item is created, updated, deleted or is
a ``manual`` item with ``drift``. Manual steps that Rabt cannot check never make it
exit 4, on HubSpot and on Zoho alike.
- ``delete``: created by Rabt, no longer desired, and ``--prune`` was given.
- ``kept``: created by Rabt and no longer desired, but kept because ``--prune`` was
  not given.

An ``update`` item can carry manual steps too, for the part of its difference
that the API cannot change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["create", "update", "unchanged", "manual", "delete", "kept"]
ACTIONS: tuple[Action, ...] = ("create", "update", "unchanged", "manual", "delete", "kept")
# Order in which apply works through item kinds; prune deletes in the reverse order.
APPLY_ORDER = ("property_group", "property", "custom_field", "pipeline", "stage", "list")
# Zoho builds a pipeline from existing Stage values, so their steps come first.
_MANUAL_ORDER = {"picklist": -1}


@dataclass(frozen=True)
class Text:
    """A line of text in English and Arabic."""

    en: str
    ar: str

    def get(self, lang: str) -> str:
        """Return the text in ``lang`` (``en`` or ``ar``)."""
        return self.ar if lang == "ar" else self.en

    def to_data(self) -> dict[str, str]:
        """Return ``{"en": ..., "ar": ...}``."""
        return {"en": self.en, "ar": self.ar}


@dataclass(frozen=True)
class Change:
    """One field whose live value differs from the desired one."""

    field: str
    old: Any
    new: Any

    def to_data(self) -> dict[str, Any]:
        """Return the change as JSON-safe data."""
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclass
class PlanItem:
    """One desired thing in the CRM and what apply does about it.

    Attributes:
        kind: ``property_group``, ``property``, ``pipeline``, ``stage``, ``list``,
            ``custom_field``, ``picklist``, ``view``, ``event_definition``.
        key: Stable identity across runs, such as ``property:contacts/ecom_ltv_sar``;
            the state file records ids under it.
        name: The CRM's name for the item (property name, field API name, list name).
        label: The display label in English and Arabic.
        container: The object or module the item belongs to (``contacts``, ``Deals``).
        action: What apply does; see the module docstring.
        changes: Field-level differences that apply makes (for ``update``).
        manual: Steps a person does (for ``manual``, and the rest of an ``update``).
        drift: Whether a ``manual`` item is a difference found in the CRM.
        live_id: The id of the matching live item, when one exists.
        owned: Whether the state file records the item as created by Rabt.
        parent: Key of the item this one belongs to (a stage's pipeline).
        payload: What apply sends to create or update the item; not printed.
    """

    kind: str
    key: str
    name: str
    label: Text
    container: str
    action: Action
    changes: list[Change] = field(default_factory=list)
    manual: list[Text] = field(default_factory=list)
    drift: bool = True
    live_id: str | None = None
    owned: bool = False
    parent: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def differs(self) -> bool:
        """Whether the CRM differs from the desired state on this item."""
        if self.action in ("create", "update", "delete"):
            return True
        return self.action == "manual" and self.drift

    def to_data(self) -> dict[str, Any]:
        """Return the item as JSON-safe data (the documented ``--format json`` shape)."""
        return {
            "kind": self.kind,
            "key": self.key,
            "name": self.name,
            "label": self.label.to_data(),
            "container": self.container,
            "action": self.action,
            "changes": [change.to_data() for change in self.changes],
            "manual": [text.to_data() for text in self.manual],
            "drift": self.differs,
            "id": self.live_id,
            "owned": self.owned,
            "parent": self.parent,
        }


@dataclass
class CrmPlan:
    """The whole plan for one project: items in apply order and the hand-made steps."""

    crm: str
    project: str
    items: list[PlanItem]
    manual_steps: list[tuple[str, Text]]
    prune: bool = False
    # Ids apply needs and the plan looked up, such as a Zoho layout id.
    context: dict[str, Any] = field(default_factory=dict)
    # General steps that the items' steps depend on, numbered before them.
    setup_steps: list[tuple[str, Text]] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        """Whether any item differs (``rabt crm plan`` exits 4 when it does)."""
        return any(item.differs for item in self.items)

    @property
    def pending(self) -> list[PlanItem]:
        """Return the items apply acts on: creates, updates and deletes, in apply order."""
        return [item for item in self.items if item.action in ("create", "update", "delete")]

    def counts(self) -> dict[str, int]:
        """Return how many items have each action."""
        return {action: sum(item.action == action for item in self.items) for action in ACTIONS}

    def numbered_steps(self) -> list[tuple[str, Text]]:
        """Return every manual step in an order a person can follow.

        The set-up steps come first, then the items' steps (a Zoho Stage value before
        the pipeline that is built from it), then the rest of the desired state's.
        """
        items = sorted(self.items, key=lambda item: _MANUAL_ORDER.get(item.kind, 0))
        steps = [(item.key, text) for item in items for text in item.manual]
        return list(self.setup_steps) + steps + list(self.manual_steps)
