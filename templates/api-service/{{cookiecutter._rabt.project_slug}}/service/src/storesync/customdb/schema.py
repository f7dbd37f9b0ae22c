"""Migrations of the customer database, and the segment parameters read from the spec."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from alembic import command
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine

from .connection import alembic_config, create_database_if_missing, current_revision, opened_engine
from .models import segment_parameters

# Segment key and rule in integration/segments.yaml → parameter name in the database.
SEGMENT_RULES = {
    ("vip", "entry", "gte"): "vip_entry_sar",
    ("vip", "exit", "lt"): "vip_exit_sar",
    ("recent_buyers", "entry", "within_days"): "recent_buyers_days",
    ("dormant_90", "entry", "older_than_days"): "dormant_days",
    ("new_subscribers", "entry", "within_days"): "new_subscriber_days",
}


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` in one transaction."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``base`` removes every table)."""
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def revision_of(engine: Engine) -> str | None:
    """Return the database's current revision, or None when it has no schema."""
    with engine.connect() as connection:
        return current_revision(connection)


def segment_values(segments: Mapping[str, Any]) -> dict[str, Decimal]:
    """Return the parameters of the segment views from a parsed ``segments.yaml``.

    Only conditions on the roll-ups the views use are read; a segment the spec does not
    have keeps the migration's default.
    """
    values: dict[str, Decimal] = {}
    for segment in segments.get("segments") or []:
        if not isinstance(segment, Mapping):
            continue
        for side in ("entry", "exit"):
            block = segment.get(side) or {}
            for condition in [*(block.get("all") or []), *(block.get("any") or [])]:
                name = SEGMENT_RULES.get((str(segment.get("key")), side,
                                          str(condition.get("op"))))
                if name is not None and condition.get("value") is not None:
                    values[name] = Decimal(str(condition["value"]))
    return values


def load_segment_parameters(engine: Engine, segments_path: Path) -> dict[str, Decimal]:
    """Write the segment thresholds of ``segments_path`` into ``segment_parameters``.

    Contacts are then re-checked against the VIP thresholds, because the trigger that
    sets ``vip`` runs only when a lifetime value changes.

    Raises:
        ValueError: the file cannot be read.
    """
    try:
        data = yaml.safe_load(segments_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read {segments_path}: {error}") from error
    values = segment_values(data if isinstance(data, Mapping) else {})
    with engine.begin() as connection:
        for name, value in values.items():
            statement = insert(segment_parameters).values(
                name=name, value=value, source=segments_path.name)
            connection.execute(statement.on_conflict_do_update(
                index_elements=["name"], set_={"value": value, "source": segments_path.name}))
        connection.execute(text("UPDATE contacts SET ltv_sar = ltv_sar"))
    return values


def prepare_sandbox_database(url: str, segments_path: Path) -> bool:
    """Create the sandbox database when it is missing, migrate it to head, load the segments.

    Only for sandbox mode, where the database is the service's own scratch copy.
    Returns True when the database was created.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the PostgreSQL server cannot be reached or refuses.
        ValueError: ``segments_path`` cannot be read.
    """
    created = create_database_if_missing(url)
    with opened_engine(url) as engine:
        upgrade(engine)
        load_segment_parameters(engine, segments_path)
    return created
