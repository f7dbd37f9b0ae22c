#!/usr/bin/env bash
# Run the service's checks: ruff, mypy, then the tests. Extra arguments go to pytest:
#   bash scripts/test.sh -k signatures
# STORESYNC_CHECKS=tests skips ruff and mypy. Tests that need Redis on 127.0.0.1:6379
# are skipped when it is absent, unless CI is set; then they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python.sh

if [ "${STORESYNC_CHECKS:-all}" != "tests" ]; then
    "$PYTHON" -m ruff check src tests bench
    "$PYTHON" -m mypy
fi

status=0
"$PYTHON" -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "scripts/test.sh: pytest collected no tests, so the run fails." >&2
fi
exit "$status"
