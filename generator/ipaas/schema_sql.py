"""The tables that the iPaaS workflows write when the CRM is the client's own PostgreSQL database.

The n8n Postgres nodes and the Zapier and Tray build sheets run the statements that
``crm_calls`` builds from the spec's field map, so the tables come from the same field
map. Each enabled entity gets one table with an identity ``id``, one column per
target and a ``<entity>_id`` column per foreign-key association. Each unique field
gets a unique constraint, which is the upserts' ``ON CONFLICT`` target. The contact's
phone and email get unique indexes too, because the contact upsert finds a guest by
them. The consents table keeps one row per consent change, as
``crm_calls.consent_insert_call`` writes it.

These are not the API service's tables (``service/src/storesync/customdb``): that
service keys its rows by its own contact and order keys and keeps audit columns that
the workflows do not write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.ipaas.flows import FlowSet, build_flows
from generator.model import Answers, Plan

SCHEMA_FILE = "database/schema.sql"
# SAR has two decimal places (ISO 4217); 14 digits hold amounts up to 10^12 SAR.
MONEY = "numeric(14, 2)"
TIME = "timestamptz"
# Column types by the field map's transform or roll-up type; any other column is text.
TRANSFORM_TYPES = {"money_sar": MONEY, "refund_total_sar": MONEY, "iso_datetime": TIME}
ROLLUP_TYPES = {"datetime": TIME, "integer": "integer", "money_sar": MONEY, "text": "text"}
# Fields whose transform keeps the store's value but whose value is a count.
INTEGER_FIELDS = frozenset({"quantity"})
CONSENT_TABLE = "consents"
CONSENT_COLUMNS = {"state": "text NOT NULL", "captured_at": TIME, "wording_version": "text"}
CONSENT_STATES = ("granted", "not_granted", "withdrawn")


def _column(target: str) -> str:
    return target.split(".", 1)[1]


def _table_columns(entity: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Return the column types of one entity's table and its unique columns."""
    columns: dict[str, str] = {}
    unique: list[str] = []
    for field in entity.get("fields", []):
        column = _column(str(field["target"]))
        kind = TRANSFORM_TYPES.get(str(field.get("transform")), "text")
        columns[column] = "integer" if field["name"] in INTEGER_FIELDS else kind
        if field.get("unique"):
            unique.append(column)
    for rollup in entity.get("rollups", []):
        columns[_column(str(rollup["target"]))] = ROLLUP_TYPES.get(str(rollup["type"]), "text")
    for setup in entity.get("setup_fields") or []:
        columns.setdefault(_column(str(setup["target"])), "text")
    return columns, unique


def _create_table(table: str, columns: Mapping[str, str], unique: list[str],
                  references: Mapping[str, str]) -> str:
    lines = ["  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"]
    lines += [f"  {name} {kind}" for name, kind in columns.items()]
    lines += [f"  {name} bigint REFERENCES {target} (id)" for name, target in references.items()]
    # NULLs never conflict, so a row without the key (a guest's contact) is allowed.
    # The contact upsert finds such a contact by phone or email instead.
    lines += [f"  UNIQUE ({name})" for name in unique]
    return f"CREATE TABLE IF NOT EXISTS {table} (\n" + ",\n".join(lines) + "\n);\n"


def _identity_indexes(mapping: Mapping[str, Any], contacts: str) -> str:
    """Return a unique index on each identity key besides the contact's unique field.

    The contact upsert finds a contact by store customer id, then phone, then email;
    these indexes keep one contact per phone and per email. The field map stores
    them already normalised (E.164, lower case), so a plain index matches.
    Empty values are left out, so contacts without a phone or email never collide.
    """
    unique = {str(field["target"]) for field in
              mapping["entities"]["contact"].get("fields", []) if field.get("unique")}
    lines = []
    for key in mapping["identity"]["match_order"]:
        target = str(key["target"])
        if target in unique or not target.startswith(f"{contacts}."):
            continue
        column = _column(target)
        lines.append(f"CREATE UNIQUE INDEX IF NOT EXISTS {contacts}_{column}_key\n"
                     f"  ON {contacts} ({column}) WHERE {column} <> '';\n")
    if not lines:
        return ""
    note = ("-- A database that already holds two contacts with one phone or email (written\n"
            "-- before these indexes) fails here: merge those contacts first.\n")
    return note + "".join(lines)


def _consents_table(contacts: str) -> str:
    states = ", ".join(f"'{state}'" for state in CONSENT_STATES)
    lines = ["  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
             f"  contact_id bigint NOT NULL REFERENCES {contacts} (id)",
             "  channel text NOT NULL CHECK (channel IN ('email', 'sms', 'whatsapp'))",
             *(f"  {name} {kind}" for name, kind in CONSENT_COLUMNS.items()),
             f"  CHECK (state IN ({states}))"]
    return (f"CREATE TABLE IF NOT EXISTS {CONSENT_TABLE} (\n" + ",\n".join(lines) + "\n);\n"
            f"CREATE INDEX IF NOT EXISTS {CONSENT_TABLE}_latest_idx\n"
            f"  ON {CONSENT_TABLE} (contact_id, channel, captured_at DESC);\n")


def schema_sql(flow_set: FlowSet) -> str:
    """Return the ``CREATE TABLE`` statements for every table the workflows write or read."""
    entities = {name: entity for name, entity in flow_set.mapping.get("entities", {}).items()
                if entity.get("enabled", True)}
    tables = {name: str(entity["object"]) for name, entity in entities.items()}
    parts = ["-- Tables the workflows write in the client's PostgreSQL database, built from\n"
             "-- integration/mapping.yaml. Run once with psql before the first workflow;\n"
             "-- regenerate the project after changing the field map.\n"]
    # Referenced tables first: contacts, then orders and products, then the rest.
    order = sorted(entities, key=lambda name: (name != "contact", name not in ("order",
                                                                               "product")))
    for name in order:
        columns, unique = _table_columns(entities[name])
        references = {_column(str(link["ref"])): tables[str(link["to"])]
                      for link in entities[name].get("associations") or []
                      if link.get("kind") == "foreign_key" and link.get("to") in tables}
        parts.append(_create_table(tables[name], columns, unique, references))
    if "contact" in tables:
        parts.append(_identity_indexes(flow_set.mapping, tables["contact"]))
        parts.append(_consents_table(tables["contact"]))
    return "\n".join(parts)


def files(answers: Answers, plan: Plan, spec: dict[str, dict[str, Any]],
          desired_state: dict[str, Any]) -> dict[str, bytes]:
    """Return ``database/schema.sql`` for a project whose CRM is the client's database."""
    if plan.crm != "custom":
        return {}
    return {SCHEMA_FILE: schema_sql(build_flows(answers, plan, spec)).encode("utf-8")}
