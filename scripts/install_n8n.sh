#!/usr/bin/env bash
# Install the n8n release that Rabt's workflows target into a cache folder, once.
#
# Usage: scripts/install_n8n.sh
#
# The version is the n8n_version of generator/data/ipaas/n8n-nodes.json. The folder is
# $RABT_N8N_HOME, or ~/.cache/rabt/n8n-<version> when that is unset. A folder that already
# contains this version is left as it is. Progress goes to standard error, and the folder's
# path is the only line on standard output, so `home=$(scripts/install_n8n.sh)` works.
#
# Exit codes: 0 installed or already there; 1 npm install failed; 2 node or npm missing,
# or the folder holds something this script did not install.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
catalogue="$repo_root/generator/data/ipaas/n8n-nodes.json"

# n8n-nodes-base 2.8.1 names its xlsx dependency by a URL on cdn.sheetjs.com, which
# machines that reach only the npm registry cannot download. npm's "overrides" swap in
# 0.18.5, the newest xlsx in the registry. docs/n8n.md lists the nodes that use it.
xlsx_override="0.18.5"
stamp_name=".rabt-n8n-version"

for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
        echo "install_n8n.sh: $tool not found; install Node.js 20.19 or later with npm" >&2
        exit 2
    fi
done

version="$(node -p 'require(process.argv[1]).n8n_version' "$catalogue")"
home="${RABT_N8N_HOME:-$HOME/.cache/rabt/n8n-$version}"
stamp="$home/$stamp_name"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ] \
        && [ -x "$home/node_modules/.bin/n8n" ]; then
    echo "n8n $version is already installed in $home" >&2
    echo "$home"
    exit 0
fi
# Replace only a folder this script made (it carries the stamp) or an empty one.
if [ -e "$home" ] && [ ! -f "$stamp" ] && [ -n "$(ls -A "$home" 2>/dev/null)" ]; then
    echo "install_n8n.sh: $home is not empty and was not made by this script;" \
        "empty it, or set RABT_N8N_HOME to another folder" >&2
    exit 2
fi

# npm installs into a fresh folder next to the target, which replaces the target only
# after a complete install, so an interrupted run leaves no half-installed n8n behind.
mkdir -p "$(dirname "$home")"
work="$(mktemp -d "$home.partial-XXXXXX")"
trap 'rm -rf "$work"' EXIT
node -e '
const [file, version, xlsx] = process.argv.slice(1);
const manifest = { name: "rabt-n8n", private: true, dependencies: { n8n: version },
  overrides: { xlsx } };
require("fs").writeFileSync(file, JSON.stringify(manifest, null, 2) + "\n");
' "$work/package.json" "$version" "$xlsx_override"

echo "Installing n8n $version into $home (a cold install downloads about 2,000 packages)" >&2
# --ignore-scripts: install scripts fetch prebuilt binaries from GitHub (sqlite3 among
# them), which fails offline. Without sqlite3, n8n needs PostgreSQL as its database.
if ! (cd "$work" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error >&2); then
    echo "install_n8n.sh: npm install n8n@$version failed; read npm's output above" >&2
    exit 1
fi
echo "$version" >"$work/$stamp_name"

# Another run may have finished first; its install is as good as this one.
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ]; then
    echo "n8n $version is installed in $home" >&2
    echo "$home"
    exit 0
fi
rm -rf "$home"
mv "$work" "$home"
trap - EXIT
echo "n8n $version is installed in $home" >&2
echo "$home"
