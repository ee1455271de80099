#!/usr/bin/env bash
# Builds the fake-TCP addon (daemon/faketcp/native/build/Release/tstier_rawtcp.node) offline, against the
# Node headers installed with Node. Without it faketcp:// and `tstier-kcptun --tcp` refuse to start;
# nothing else needs it. Skips the build when the addon is newer than its sources.
set -euo pipefail
cd "$(dirname "$0")"
out=build/Release/tstier_rawtcp.node
if [ -f "$out" ] && [ -z "$(find src binding.gyp -newer "$out" -print -quit)" ]; then exit 0; fi
nodedir="${npm_config_nodedir:-/usr}"
echo "faketcp/native/build.sh: building the raw TCP addon against $nodedir/include/node"
npx --no-install node-gyp rebuild --nodedir="$nodedir" --loglevel=warn
test -f "$out"
