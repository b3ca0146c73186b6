#!/bin/sh
# Builds the libFuzzer harnesses (clang, ASan + UBSan) and runs each for SECONDS (default 60) on
# a copy of its seed corpus. Exits non-zero on any crash, leak, timeout, out-of-memory or
# sanitizer report, naming the harness and the reproducer, which stays in the work directory
# (replay it with: <work>/<harness> <reproducer>). Needs clang with libFuzzer (Debian:
# clang, libclang-rt-dev) and the libyaml, zlib, OpenCL and CLBlast headers; no OpenCL device.
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]     harnesses: config safetensors idx cifar
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
seconds=${1:-60}
[ $# -gt 0 ] && shift
harnesses=${*:-config safetensors idx cifar}
CC=${FUZZ_CC:-clang}

case $seconds in
    '' | *[!0-9]*) echo "run.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac
command -v "$CC" >/dev/null || { echo "run.sh: $CC not found: install clang" >&2; exit 1; }
deps=$(pkg-config --cflags --libs yaml-0.1 zlib) ||
    { echo "run.sh: pkg-config knows no yaml-0.1 or zlib: install libyaml-dev zlib1g-dev" >&2; exit 1; }

for h in $harnesses; do
    case $h in
        config | safetensors | idx | cifar) ;;
        *) echo "run.sh: unknown harness '$h' (config safetensors idx cifar)" >&2; exit 2 ;;
    esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ramp-fuzz.XXXXXX") || exit 1
cflags="-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -Wall -Wextra -fno-omit-frame-pointer
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
    -I$top/include -DCL_TARGET_OPENCL_VERSION=120"
# Every report stops the run: libFuzzer then writes the input that caused it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=""
for h in $harnesses; do
    case $h in
        config) srcs="src/io/config.c src/base/error.c src/base/names.c" ;;
        safetensors) srcs="src/io/safetensors.c src/io/json.c src/base/files.c src/base/interrupt.c
                           src/base/error.c" ;;
        idx | cifar) srcs="src/io/dataset.c src/base/rng.c src/base/error.c" ;;
    esac
    files="$here/fuzz_$h.c"
    for s in $srcs; do files="$files $top/$s"; done
    # shellcheck disable=SC2086 # word splitting of the flag lists is meant
    if ! "$CC" $cflags -o "$work/$h" $files $deps -lm; then
        echo "fuzz $h: FAILED to build"
        failed="$failed $h"
        continue
    fi
    mkdir -p "$work/corpus-$h" "$work/artifacts-$h" "$work/tmp-$h"
    cp "$here/corpus/$h/"* "$work/corpus-$h/"
    start=$(date +%s)
    # TMPDIR: the files of harnesses that feed readers through files, also after a crash.
    (cd "$work" && TMPDIR="$work/tmp-$h" "./$h" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts-$h/" \
        "corpus-$h") >"$work/$h.log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    repro=$(find "$work/artifacts-$h" -type f | head -n 1)
    if [ $rc -ne 0 ] || [ -n "$repro" ]; then
        tail -n 60 "$work/$h.log"
        echo "fuzz $h: FAILED (exit $rc after ${took}s); reproducer: ${repro:-none written};" \
            "log: $work/$h.log"
        failed="$failed $h"
    else
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$h.log")
        echo "fuzz $h: ok, ${runs:-?} inputs in ${took}s"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: FAILED:$failed (work directory kept: $work)"
    exit 1
fi
rm -rf "$work"
echo "fuzz: all passed"
