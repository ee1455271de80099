#!/usr/bin/env bash
# Builds the TUN addon (daemon/tun/native/build/Release/tstier_tun.node) with the project's node-gyp.
# Offline-safe: node-gyp is pointed at the headers installed with Node (the `nodejs` package) instead
# of downloading them. Skips the build when the addon is newer than every source.
set -euo pipefail
cd "$(dirname "$0")"

out=build/Release/tstier_tun.node
if [ -f "$out" ] && [ -z "$(find src binding.gyp -newer "$out" -print -quit)" ]; then
  exit 0
fi

nodedir="${npm_config_nodedir:-/usr}"
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
  echo "tun/native/build.sh: Node headers not found at $nodedir/include/node (node_api.h)." >&2
  echo "  Install the Debian 'nodejs' package headers, or set npm_config_nodedir to a Node tree with include/node." >&2
  exit 1
fi

echo "tun/native/build.sh: building the TUN addon against $nodedir/include/node"
npx --no-install node-gyp rebuild --nodedir="$nodedir" --loglevel=warn
test -f "$out"
