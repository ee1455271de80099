#!/usr/bin/env bash
# Builds the peer-layer addon (daemon/peer/native/build/Release/tstier_peer.node) offline, against the
# Node headers (OpenSSL's included) installed with Node. Without it the peer layer still works,
# on node:crypto and plain dgram sends, only slower. Skips the build when the addon is newer than its sources.
set -euo pipefail
cd "$(dirname "$0")"
out=build/Release/tstier_peer.node
if [ -f "$out" ] && [ -z "$(find src binding.gyp -newer "$out" -print -quit)" ]; then exit 0; fi
nodedir="${npm_config_nodedir:-/usr}"
echo "peer/native/build.sh: building the peer-layer addon against $nodedir/include/node"
npx --no-install node-gyp rebuild --nodedir="$nodedir" --loglevel=warn
test -f "$out"
