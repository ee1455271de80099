#!/usr/bin/env bash
# Builds the TUN addon (daemon/tun/native/build/Release/tstier_tun.node) offline, against the Node
# headers installed with Node. Skips the build when the addon is newer than every source.
set -euo pipefail
cd "$(dirname "$0")"
source ../../native/build-addon.sh
build_addon build/Release/tstier_tun.node "tun/native/build.sh: the TUN addon"
