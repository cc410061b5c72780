#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer and runs the CPU tests
# and the stress test against it.
#
#   scripts/build-sanitized.sh [--worktree] [--node N] [--no-tests] [--no-stress]
#                              [--tests 'test/cpu-*.test.js'] [--stress-seconds 10]
#
# - Lays a scratch copy of the repo in $SIGPROF_ASAN_DIR (/tmp/sigprof-asan): committed HEAD
#   by default, the working tree with --worktree; node_modules is a symlink to this repo's.
#   Nothing is written to this repo's build/ or dist/.
# - Builds there with node-gyp, CFLAGS/CXXFLAGS/LDFLAGS += -fsanitize=address,undefined
#   -fno-omit-frame-pointer (-fno-sanitize=vptr: node-gyp builds with -fno-rtti), -O1 -g.
#   The result is $SIGPROF_ASAN_DIR/build/Release/sigprof.node.
# - node is not ASan-built, so it runs with LD_PRELOAD=$(gcc -print-file-name=libasan.so)
#   and ASAN_OPTIONS=detect_leaks=0 (V8 leaks by design); first it checks that the addon
#   really runs instrumented (ASan reports a deliberate heap overflow in a throwaway .so).
# - Tests run in the scratch copy (whose build/Release is the sanitized addon) with
#   SIGPROF_ADDON pointing at it as well; the stress test is scripts/stress.sh --asan.
# Sanitizer output is collected in $SIGPROF_ASAN_DIR/*.log; the summary counts
# "ERROR: AddressSanitizer" and "runtime error:" reports. Exit 0 when there are none and
# everything passed.
set -uo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${SIGPROF_ASAN_DIR:-/tmp/sigprof-asan}"
# shellcheck source=scripts/nodes.sh
. "$repo/scripts/nodes.sh"
source_mode=head
node_major=""
run_tests=1
run_stress=1
tests='test/cpu-*.test.js'
stress_seconds=10
while [ $# -gt 0 ]; do
  case "$1" in
    --worktree) source_mode=worktree ;;
    --node) shift; node_major="$1" ;;
    --no-tests) run_tests=0 ;;
    --no-stress) run_stress=0 ;;
    --tests) shift; tests="$1" ;;
    --stress-seconds) shift; stress_seconds="$1" ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

nodebin="$(command -v node)"; nodedir=/usr
if [ -n "$node_major" ] && [ "$node_major" != "$("$nodebin" -p 'process.versions.node.split(".")[0]')" ]; then
  read -r nodedir nodebin < <(node_for "$node_major") || exit 1
  dir="$dir-$node_major"
fi
echo "node $("$nodebin" --version), scratch $dir"

rm -rf "$dir"; mkdir -p "$dir"
if [ "$source_mode" = head ]; then
  git -C "$repo" archive --format=tar HEAD | tar -x -C "$dir"
else
  tar -C "$repo" --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./.git -cf - . | tar -x -C "$dir"
fi
ln -s "$repo/node_modules" "$dir/node_modules"

san='-fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer -fno-sanitize-recover=address -g -O1'
echo "building with $san (log: $dir/build.log)"
if ! (cd "$dir" && CFLAGS="$san" CXXFLAGS="$san" LDFLAGS="-fsanitize=address,undefined" \
      PATH="$(dirname "$nodebin"):$PATH" node "$node_gyp" rebuild --nodedir="$nodedir" --jobs=2) >"$dir/build.log" 2>&1; then
  grep -E 'error' "$dir/build.log" | head -20
  echo "sanitized build FAILED"; exit 1
fi
addon="$dir/build/Release/sigprof.node"
# One ldd, read whole: `ldd | grep -q` under pipefail fails when grep exits at its first
# match and ldd then dies of SIGPIPE, which read as "not linked" now and then.
links="$(ldd "$addon")"
grep -E 'libasan|libubsan' <<<"$links" | sed 's/^/  links /'
grep -q libasan <<<"$links" || { echo "the addon does not link libasan: flags did not reach the build"; exit 1; }
warnings=$(grep -c 'warning:' "$dir/build.log" || true)
echo "build ok, $warnings warning(s)"
(cd "$dir" && "$nodebin" node_modules/typescript/bin/tsc -p tsconfig.json && "$nodebin" scripts/bundle-flame.js) || { echo "tsc FAILED"; exit 1; }

libasan="$(gcc -print-file-name=libasan.so)"
export LD_PRELOAD="$libasan"
# allow_user_segv_handler: node installs its own SIGSEGV handler (wasm trap handling).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:print_summary=1:allow_user_segv_handler=1:log_path=$dir/asan}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=0:log_path=$dir/ubsan}"
export SIGPROF_ADDON="$addon"   # lib/native.ts loads $SIGPROF_ADDON first
rm -f "$dir"/asan.* "$dir"/ubsan.*

# Does ASan really run inside this node? (1) the addon loads; (2) libasan is mapped;
# (3) a throwaway ASan-built library with a deliberate heap overflow in its constructor,
# loaded with process.dlopen, must be reported by ASan from inside node.
"$nodebin" -e "process.dlopen({ exports: {} }, process.env.SIGPROF_ADDON)" \
  && echo "sanitized addon loads in node under LD_PRELOAD=libasan: ok" || { echo "sanitized addon does not load"; exit 1; }
"$nodebin" -e "process.exit(/libasan/.test(require('fs').readFileSync('/proc/self/maps', 'utf8')) ? 0 : 1)" \
  && echo "libasan is mapped into node: ok" || { echo "libasan is not mapped into node"; exit 1; }
printf '#include <stdlib.h>\n__attribute__((constructor)) static void probe(void) { volatile char *p = malloc(8); p[8] = 1; free((void *)p); }\n' >"$dir/asan-probe.c"
gcc -shared -fPIC -fsanitize=address -g -o "$dir/asan-probe.so" "$dir/asan-probe.c"
probe_out="$(ASAN_OPTIONS=detect_leaks=0 "$nodebin" -e "process.dlopen({ exports: {} }, '$dir/asan-probe.so')" 2>&1)"
if grep -q 'heap-buffer-overflow' <<<"$probe_out"; then
  echo "ASan reports a heap overflow from code loaded into node: ok"
else
  echo "ASan did NOT report the probe's heap overflow inside node"; exit 1
fi
# Read nm's output whole: `nm | grep -q` under pipefail fails when grep stops reading early.
imports="$(nm -D --undefined-only "$addon")"
grep -q __asan_report_ <<<"$imports" && grep -q __ubsan_handle_ <<<"$imports" \
  && echo "the addon is instrumented (__asan_report_*, __ubsan_handle_* imports): ok" || { echo "the addon is not instrumented"; exit 1; }

status=0
if [ $run_tests = 1 ]; then
  echo "tests: $tests (log: $dir/test.log)"
  # shellcheck disable=SC2086
  (cd "$dir" && PATH="$(dirname "$nodebin"):$PATH" "$nodebin" --test --test-concurrency=1 --test-reporter=spec $tests) >"$dir/test.log" 2>&1
  rc=$?
  grep -E '^ℹ (tests|pass|fail|skipped) ' "$dir/test.log" | tr '\n' ' '; echo "rc=$rc"
  if [ $rc != 0 ]; then
    status=1
    sed -n '/^✖ failing tests:/,$p' "$dir/test.log" | grep -E '^(test at|✖ |  [A-Z][a-zA-Z]*Error)' | sed 's/^/    /'
  fi
fi
if [ $run_stress = 1 ]; then
  echo "stress (${stress_seconds}s per mode, logs in $dir/stress):"
  SIGPROF_STRESS_DIR="$dir/stress" "$repo/scripts/stress.sh" --asan --pkg "$dir" --addon "$addon" \
    $([ -n "$node_major" ] && echo "--node $node_major") --seconds "$stress_seconds" || status=1
fi

asan_reports=$(cat "$dir"/asan.* 2>/dev/null | grep -c 'ERROR: AddressSanitizer' || true)
ubsan_reports=$(cat "$dir"/ubsan.* "$dir"/stress/*.log 2>/dev/null | grep -c 'runtime error:' || true)
echo "== sanitizer reports: ASan $asan_reports, UBSan $ubsan_reports (files: $dir/asan.*, $dir/ubsan.*) =="
if [ "$asan_reports" != 0 ] || [ "$ubsan_reports" != 0 ]; then
  status=1
  cat "$dir"/asan.* "$dir"/ubsan.* 2>/dev/null | grep -E 'ERROR: AddressSanitizer|runtime error:|^    #[0-9] ' | head -40
fi
exit $status
