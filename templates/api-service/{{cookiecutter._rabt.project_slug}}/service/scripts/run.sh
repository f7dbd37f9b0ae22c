#!/usr/bin/env bash
# Start the service: intake, worker and flusher. In sandbox mode it also starts the local
# HubSpot or Zoho CRM stand-in (while HUBSPOT_ACCESS_TOKEN or ZOHO_REFRESH_TOKEN is unset) or
# creates and migrates a local sandbox database (CRM_TARGET=custom while DATABASE_URL is
# unset), and for a Shopify or WooCommerce store whose API settings are unset, the store's
# API stand-in. Ctrl-C stops everything. Extra arguments go to `python -m storesync run`,
# e.g. --workers 4.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python.sh
exec "$PYTHON" -m storesync run "$@"
