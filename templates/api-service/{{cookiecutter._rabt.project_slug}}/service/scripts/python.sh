# Sourced by the other scripts: choose the Python interpreter and put src/ on the path.
#
# STORESYNC_PYTHON, when set, names an interpreter that already has the service's
# dependencies (CI and rabt's own tests use it). Otherwise the scripts use .venv in
# the service folder, created on first use and reinstalled when pyproject.toml changes.

export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"

if [ -n "${STORESYNC_PYTHON:-}" ]; then
    PYTHON="$STORESYNC_PYTHON"
else
    PYTHON=.venv/bin/python
    marker=.venv/.storesync-installed
    if [ ! -f "$marker" ] || [ pyproject.toml -nt "$marker" ]; then
        echo "Setting up .venv with the service's dependencies (first run only)…" >&2
        python3 -m venv .venv
        "$PYTHON" -m pip install --quiet --upgrade pip
        "$PYTHON" -m pip install --quiet -e ".[dev]"
        touch "$marker"
    fi
fi
