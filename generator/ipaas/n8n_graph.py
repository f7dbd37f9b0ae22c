"""The node graph of one n8n workflow while it is built: nodes, connections, layout.

Node and webhook ids are UUIDs derived from the project, flow and node name, so a
regenerated project writes the same ids. Credentials are referenced by name with a
null id: on ``n8n import:workflow`` n8n (checked in 2.8.4, ``replaceInvalidCredentials``)
links each node to the one credential of that type and name, and leaves the
reference for the user to pick when there is none.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from generator.ipaas.flows import Flow, FlowSet

PACKAGE = "n8n-nodes-base"
# The type version written for each node: the version whose parameter shapes this
# package writes. Each one must be in the catalogue of the pinned release.
TYPE_VERSIONS: dict[str, float] = {
    "code": 2,
    "dataTable": 1,
    "emailSend": 2.1,
    "errorTrigger": 1,
    "executeWorkflow": 1.2,
    "executeWorkflowTrigger": 1.1,
    "httpRequest": 4.2,
    "noOp": 1,
    "postgres": 2.5,
    "removeDuplicates": 2,
    "scheduleTrigger": 1.2,
    "shopifyTrigger": 1,
    "switch": 3.2,
    "wait": 1.1,
    "webhook": 2,
    "wooCommerceTrigger": 1,
}
COLUMN_WIDTH = 240
ROW_HEIGHT = 200

# Credential type and name suffix per system the workflows call. Zoho uses the
# generic OAuth2 credential: the Zoho OAuth2 credential of the pinned release lists
# no token URL for the Saudi data centre (accounts.zoho.sa).
CREDENTIALS: dict[str, tuple[str, str]] = {
    "shopify": ("shopifyAccessTokenApi", "shopify"),
    "woocommerce": ("wooCommerceApi", "woocommerce"),
    "hubspot": ("hubspotAppToken", "hubspot"),
    "zoho": ("oAuth2Api", "zoho"),
    "whatsapp": ("whatsAppApi", "whatsapp"),
    "smtp": ("smtp", "alerts-smtp"),
    "storefront": ("httpHeaderAuth", "storefront"),
    "support_inbox": ("httpHeaderAuth", "support-webhook"),
    "sms": ("httpHeaderAuth", "sms"),
    "storefront_api": ("httpHeaderAuth", "storefront-api"),
    "postgres": ("postgres", "database"),
}
# Systems with one account per shop: their triggers and API calls take the shop's credential.
STORE_SYSTEMS = frozenset({"shopify", "woocommerce"})


@dataclass(frozen=True)
class Project:
    """Facts every workflow of one project shares."""

    slug: str
    client_name: str
    crm: str
    platform: str
    flows: FlowSet
    spec: Mapping[str, Mapping[str, Any]]
    workflow_ids: Mapping[str, str]
    catalogue: Mapping[str, Any]
    namespace: uuid.UUID
    replay_targets: frozenset[str] = frozenset()
    timezone: str = "Asia/Riyadh"
    # Shops of the platform that share the CRM. Above 1, each shop has its own store
    # credential (see STORE_SYSTEMS) and every record key made from a store id
    # starts with the shop of the delivery.
    store_count: int = 1

    @property
    def multi_store(self) -> bool:
        """Whether the workflows serve more than one shop of the platform."""
        return self.store_count > 1 and self.platform in STORE_SYSTEMS

    def credential(self, system: str, store: int | None = None) -> dict[str, dict[str, Any]]:
        """Return a node's credentials entry for ``system``, by name with a null id.

        ``store`` (1 to ``store_count``) picks one shop's credential of a store system.
        """
        kind = CREDENTIALS[system][0]
        return {kind: {"id": None, "name": self.credential_name(system, store)}}

    def credential_name(self, system: str, store: int | None = None) -> str:
        """Return the name the credential of ``system`` (of one shop, if given) must have."""
        name = f"{self.slug}-{CREDENTIALS[system][1]}"
        if store is not None and self.multi_store and system in STORE_SYSTEMS:
            name = f"{name}-store-{store}"
        return name


@dataclass
class Graph:
    """Nodes and connections of one workflow, with a simple left-to-right layout."""

    project: Project
    flow: Flow
    nodes: list[dict[str, Any]] = field(default_factory=list)
    connections: dict[str, dict[str, list[list[dict[str, Any]]]]] = field(default_factory=dict)
    column: int = 0
    row: int = 0
    # The node whose items are store payloads; a new entity's mapping starts there.
    payload_node: str = ""
    # The mapping node whose items ({record, key, refs, payload}) the steps after a
    # request continue with, or None before the first mapping.
    context_node: str | None = None
    # Per entity: the names of its mapping, batch and request nodes.
    entity_nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    # The dedupe check whose key is stored only after the CRM writes: its node name,
    # step title, key expression and table, or None in a flow without dedupe.
    dedupe: tuple[str, str, str, str] | None = None
    # In a workflow that serves several shops: the node whose first item carries the
    # shop of the run (``rabt_store``, ``rabt_shop``), or None when a run is not tied
    # to one shop (a CRM-driven schedule).
    store_node: str | None = None
    # Node groups: a link into the group's last node goes to its first node instead.
    entries: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, node_type: str, parameters: Mapping[str, Any], *,
            credentials: Mapping[str, Any] | None = None, notes: str | None = None,
            **extra: Any) -> str:
        """Add a node and return its name, made unique within the workflow."""
        unique = name
        taken = {node["name"] for node in self.nodes}
        counter = 2
        while unique in taken:
            unique = f"{name} ({counter})"
            counter += 1
        node: dict[str, Any] = {
            "id": str(uuid.uuid5(self.project.namespace, f"{self.flow.key}/{unique}")),
            "name": unique,
            "type": f"{PACKAGE}.{node_type}",
            "typeVersion": TYPE_VERSIONS[node_type],
            "position": [self.column * COLUMN_WIDTH, self.row * ROW_HEIGHT],
            "parameters": dict(parameters),
        }
        if self._has_webhook(node_type):
            node["webhookId"] = str(uuid.uuid5(self.project.namespace,
                                               f"{self.flow.key}/{unique}/webhook"))
        if credentials:
            node["credentials"] = dict(credentials)
        if notes:
            node["notes"] = notes
            node["notesInFlow"] = False
        node.update(extra)
        self.nodes.append(node)
        self.column += 1
        return unique

    def _has_webhook(self, node_type: str) -> bool:
        entry = self.project.catalogue["nodes"].get(f"{PACKAGE}.{node_type}", {})
        return bool(entry.get("webhook"))

    def link(self, source: str, target: str, output: int = 0) -> None:
        """Connect output ``output`` of ``source`` to the first input of ``target``."""
        target = self.entries.get(target, target)
        outputs = self.connections.setdefault(source, {}).setdefault("main", [])
        while len(outputs) <= output:
            outputs.append([])
        outputs[output].append({"node": target, "type": "main", "index": 0})

    def link_all(self, heads: list[tuple[str, int]], target: str) -> None:
        """Connect every head ``(node, output)`` to ``target``."""
        for source, output in heads:
            self.link(source, target, output)

    def chain(self, heads: list[tuple[str, int]], *names: str) -> list[tuple[str, int]]:
        """Connect ``heads`` to the first of ``names``, each name to the next; return the tail."""
        for name in names:
            self.link_all(heads, name)
            heads = [(name, 0)]
        return heads

    def new_row(self, column: int) -> None:
        """Start the next nodes on a new row below, from ``column``."""
        self.row += 1
        self.column = column
