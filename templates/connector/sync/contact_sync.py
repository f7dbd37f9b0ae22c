"""Run the daily contact sync: ``python sync/contact_sync.py [--dry-run] [--since WHEN]``.

See ``python sync/contact_sync.py --help`` and docs/connector-setup.md for the
schedule, the environment variables and the exit codes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contactsync.cli import main  # noqa: E402  (needs the path above)

if __name__ == "__main__":
    raise SystemExit(main())
