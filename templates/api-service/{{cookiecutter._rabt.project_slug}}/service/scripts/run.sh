#!/usr/bin/env bash
# Start the service: intake and worker. In sandbox mode it also starts the local HubSpot
# stand-in (CRM_TARGET=hubspot while HUBSPOT_ACCESS_TOKEN is unset) or creates and migrates a
# local sandbox database (CRM_TARGET=custom while DATABASE_URL is unset). Ctrl-C stops
# everything. Extra arguments go to `python -m storesync run`, e.g. --workers 4.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python.sh
exec "$PYTHON" -m storesync run "$@"
