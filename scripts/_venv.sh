# Sourced by the scripts in this folder: make sure .venv holds Rabt and its test tools.
# RABT_VENV overrides the location (CI uses a fresh one per run).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RABT_VENV:-$repo_root/.venv}"
stamp="$venv/.rabt-installed"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# Reinstall when pyproject.toml changed since the last install.
if [ ! -f "$stamp" ] || [ "$repo_root/pyproject.toml" -nt "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e "$repo_root[test]"
    touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
