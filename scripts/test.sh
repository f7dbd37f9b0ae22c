#!/usr/bin/env bash
# Lint, type-check and run the whole test suite; extra arguments go to pytest.
source "$(dirname "$0")/_venv.sh"
cd "$repo_root"
ruff check generator tests
mypy
status=0
python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests; that is a failure here" >&2
    exit 1
fi
exit "$status"
