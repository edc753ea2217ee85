#!/usr/bin/env bash
# @asyncapi/cli, installed once per machine from npm into the shared cache (never globally),
# then run with the given arguments: tools/asyncapi/cli.sh validate docs/asyncapi/intake.json
set -euo pipefail
VERSION=6.2.0
CACHE="${GW_CACHE_DIR:-$HOME/.cache/gridwhistle}/npm/asyncapi-cli-$VERSION"
BIN="$CACHE/node_modules/.bin/asyncapi"
if [[ ! -x "$BIN" ]]; then
    command -v npm >/dev/null || { echo "npm is required for @asyncapi/cli (apt-get install npm)" >&2; exit 2; }
    echo "installing @asyncapi/cli $VERSION into $CACHE (once per machine)" >&2
    mkdir -p "$CACHE"
    npm install --prefix "$CACHE" --no-audit --no-fund --loglevel=error "@asyncapi/cli@$VERSION" >&2
    "$BIN" config analytics --disable >/dev/null 2>&1 || true  # no telemetry from CI
fi
export NODE_NO_WARNINGS=1 SUPPRESS_NO_CONFIG_WARNING=1
exec "$BIN" "$@"
