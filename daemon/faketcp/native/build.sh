#!/usr/bin/env bash
# Builds the fake-TCP addon (daemon/faketcp/native/build/Release/tstier_rawtcp.node) offline, against the
# Node headers installed with Node. Without it faketcp:// and `tstier-kcptun --tcp` refuse to start;
# nothing else needs it. Skips the build when the addon is newer than its sources.
set -euo pipefail
cd "$(dirname "$0")"
source ../../native/build-addon.sh
build_addon build/Release/tstier_rawtcp.node "faketcp/native/build.sh: the raw TCP addon"
