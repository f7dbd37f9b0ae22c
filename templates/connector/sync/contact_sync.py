"""Run the daily contact sync: ``python sync/contact_sync.py [--dry-run] [--since WHEN]``.

See ``python sync/contact_sync.py --help`` and docs/connector-setup.md for the
schedule, the environment variables and the exit codes.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Exit code for invalid settings, the same as the sync's own.
EXIT_INVALID = 2

sys.path.insert(0, str(HERE))

try:
    from contactsync.cli import main
except ModuleNotFoundError as error:
    # Before the requirements are installed, say which command installs them instead
    # of ending in an import traceback.
    package = (error.name or "?").split(".")[0]
    if package == "contactsync":
        raise
    print(f"error: the contact sync needs the Python package {package!r}, which is not "
          f"installed. Install its requirements first: python -m pip install -r "
          f"{HERE / 'requirements.txt'}", file=sys.stderr)
    raise SystemExit(EXIT_INVALID) from None

if __name__ == "__main__":
    raise SystemExit(main())
