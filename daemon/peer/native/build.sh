#!/usr/bin/env bash
# Builds the peer-layer addon (daemon/peer/native/build/Release/tstier_peer.node) offline, against the
# Node headers (OpenSSL's included) installed with Node. Without it the peer layer still works,
# on node:crypto and plain dgram sends, only slower. Skips the build when the addon is newer than its sources.
set -euo pipefail
cd "$(dirname "$0")"
source ../../native/build-addon.sh
build_addon build/Release/tstier_peer.node "peer/native/build.sh: the peer-layer addon"
