# Sourced by each addon's build.sh (run from its native/ folder): the node-gyp build they share.

# build_addon OUT WHAT: builds the addon in the current folder into OUT with the project's node-gyp,
# offline: node-gyp is pointed at the headers installed with Node (the `nodejs` package, OpenSSL's
# included) instead of downloading them. Skips the build when OUT is newer than every source, the
# shared ones in daemon/native included. WHAT names the addon in messages.
build_addon() {
  local out=$1 what=$2
  local shared
  shared="$(dirname "${BASH_SOURCE[0]}")"
  if [ -f "$out" ] && [ -z "$(find src binding.gyp "$shared" -newer "$out" -print -quit)" ]; then
    return 0
  fi
  local nodedir="${npm_config_nodedir:-/usr}"
  if [ ! -f "$nodedir/include/node/node_api.h" ]; then
    echo "$what: Node headers not found at $nodedir/include/node (node_api.h)." >&2
    echo "  Install the Debian 'nodejs' package headers, or set npm_config_nodedir to a Node tree with include/node." >&2
    return 1
  fi
  echo "$what: building against $nodedir/include/node"
  npx --no-install node-gyp rebuild --nodedir="$nodedir" --loglevel=warn
  test -f "$out"
}
