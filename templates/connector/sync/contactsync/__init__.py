"""Daily contact sync from a WooCommerce store to the project's CRM (HubSpot or Zoho CRM).

Run it with ``python sync/contact_sync.py`` from the project folder. It reads the
customers and guest orders changed since the last run, maps them with
``integration/mapping.yaml``, adds the order roll-ups computed from the store's paid
orders (``rollups.py``) and upserts them as CRM contacts, 100 per call.

Exit codes:
    0: every changed contact was written (or, with ``--dry-run``, mapped).
    1: some contacts failed and are kept for the next run, or the store or the CRM
       failed after retries.
    2: invalid input: a missing or invalid environment variable or option, an
       unreadable project file, or credentials the store or the CRM rejected.
    3: another run is still going (it holds ``<state>.lock``); nothing was read or
       written. A lock whose process is gone, or older than 6 hours, is taken over.
"""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID_INPUT = 2
EXIT_LOCKED = 3
