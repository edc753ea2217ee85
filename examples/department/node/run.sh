#!/usr/bin/env bash
# Run the Node department example: installs its npm dependencies (package-lock.json, `npm ci`)
# once per machine into the cache, outside the work tree, then runs department.js with them.
#   GW_AMQP_URL=amqp://user:pass@host:5672/vhost GW_DEPARTMENT_ID=changjia.emergency_safety \
#       examples/department/node/run.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v node >/dev/null || { echo "node is required for this example (apt-get install nodejs)" >&2; exit 2; }
command -v npm >/dev/null || { echo "npm is required for this example (apt-get install npm)" >&2; exit 2; }
LOCK_HASH="$(sha256sum "$HERE/package-lock.json" | cut -c1-16)"  # a new lock file: a new install
CACHE="${GW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gridwhistle}/npm-examples/department-$LOCK_HASH"
if [[ ! -d "$CACHE/node_modules" ]]; then
    echo "installing the Node example's dependencies into $CACHE (once per machine)" >&2
    mkdir -p "$(dirname "$CACHE")"
    STAGE="$(mktemp -d "$CACHE.XXXXXX")"  # installed aside, then moved: a concurrent run never sees half
    trap 'rm -rf "$STAGE"' EXIT
    cp "$HERE/package.json" "$HERE/package-lock.json" "$STAGE/"
    npm ci --prefix "$STAGE" --no-audit --no-fund --loglevel=error >&2
    mv -T "$STAGE" "$CACHE" 2>/dev/null || true  # another run may have won the race: use its copy
fi
export NODE_PATH="$CACHE/node_modules"
exec node "$HERE/department.js" "$@"
