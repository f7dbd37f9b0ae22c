"""The client's own PostgreSQL customer database, the CRM target ``custom``.

* ``models``: the tables; ``migrations``: the Alembic revisions that create them, with
  the segment and KPI views;
* ``connection`` and ``schema``: engines, the revision check, upgrade and downgrade;
* ``deliveries``: the worker step that keeps raw bodies and line item links;
* ``writer``: drains the outbox into the database in place of the HubSpot flusher;
* ``export`` and ``roles``: the ERP export and the read-only BI role;
* ``commands``: ``python -m storesync db ...`` and ``python -m storesync export``.
"""
