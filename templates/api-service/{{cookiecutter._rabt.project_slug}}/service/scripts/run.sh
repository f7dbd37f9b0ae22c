#!/usr/bin/env bash
# Start the service: intake, worker and, while HUBSPOT_ACCESS_TOKEN is unset, the local
# HubSpot stand-in (sandbox mode). Ctrl-C stops everything. Extra arguments go to
# `python -m storesync run`, e.g. --workers 4.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python.sh
exec "$PYTHON" -m storesync run "$@"
