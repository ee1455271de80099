#!/usr/bin/env bash
# Builds the transport addon (daemon/transport/native/build/Release/tstier_transport.node) offline, against
# the Node headers (OpenSSL's included) installed with Node: kcp-go's per-datagram work (CFB crypt with the
# nonce and CRC framing, CRC-32/CRC-32C, Reed-Solomon multiply-add) for tstier-kcptun and kcptube. Without
# it they run the same wire in JavaScript, slower. Skips the build when the addon is newer than its sources.
set -euo pipefail
cd "$(dirname "$0")"
source ../../native/build-addon.sh
build_addon build/Release/tstier_transport.node "transport/native/build.sh: the transport addon"
