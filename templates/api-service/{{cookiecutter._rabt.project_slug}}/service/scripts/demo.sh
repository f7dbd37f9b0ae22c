#!/usr/bin/env bash
# Post the shipped sample webhooks to a running service (start it first with
# `bash scripts/run.sh` in another terminal) and print the CRM records they produce.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python.sh
exec "$PYTHON" -m storesync demo "$@"
