#!/usr/bin/env bash
# Generate the built-in default project (preset riyadh-perfume-hubspot) into ./out.
source "$(dirname "$0")/_venv.sh"
cd "$repo_root"
rabt new --no-input --output-dir out --overwrite "$@"
