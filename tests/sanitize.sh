#!/bin/sh
# Builds a second copy of the tree with AddressSanitizer and UndefinedBehaviorSanitizer and runs
# its test suite. The copy is the release's file list (make distdir from this configured tree)
# in a temporary directory, configured there, so this tree's build is untouched. Fails on a
# failing test or on any ASan, LSan or UBSan report, printing the reports; the temporary
# directory is kept on failure and removed otherwise.
#   tests/sanitize.sh            (from a configured tree: ./configure has been run)
# Leaks inside the OpenCL driver (PoCL, its LLVM, the ICD loader) are suppressed by
# tests/lsan.supp, which names only driver libraries; see there why each is needed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
[ -f "$top/Makefile" ] ||
    { echo "sanitize.sh: run ./configure in $top first (make distdir needs its Makefile)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ramp-sanitize.XXXXXX") || exit 1
fail() {
    echo "sanitize: FAILED: $* (work directory kept: $work)"
    exit 1
}
make -s -C "$top" distdir distdir="$work/src" >/dev/null || fail "make distdir"

flags='-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1'
mkdir -p "$work/reports"
# Every report goes to a file as well as ending the process with an error: the command-line
# tests capture the output of the programs they run, which would hide a report there.
# intercept_tls_get_addr=0: up to GCC 13, the runtime's __tls_get_addr interceptor takes a dynamic
# TLS block whose address is 4096k + 16 for a pre-2.25 glibc header and reads a bogus range from
# it; LeakSanitizer's tracer then dies scanning it ("Tracer caught signal 11", seen on
# check_square's PoCL worker threads; google/sanitizers#1322). Pointers held only in dynamic TLS
# are then not roots: in this program only the driver libraries' are, which tests/lsan.supp names.
export ASAN_OPTIONS="detect_leaks=1:intercept_tls_get_addr=0:log_path=$work/reports/asan"
export LSAN_OPTIONS="suppressions=$top/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/reports/ubsan"
# Check's per-test timeout (300 s from Makefile.am) times 3: under ASan the slowest test,
# check_gemm's own_tunings_match_host, took 131 s alone against 67 s without, and over 300 s
# beside another test on a shared 2-core machine.
export CK_TIMEOUT_MULTIPLIER=3

cd "$work/src" || fail "cd $work/src"
# Without MPI (tests/mpi.sh then skips): Open MPI's libraries keep allocations to the end of
# the process that LeakSanitizer would report on every run of the MPI tests.
./configure -q --without-mpi CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
    >"$work/configure.log" 2>&1 ||
    { cat "$work/configure.log"; fail "configure"; }
make -j2 >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; fail "build"; }
make -j2 check >"$work/check.log" 2>&1
status=$?
for log in tests/*.log; do
    grep -q '^FAIL\|^ERROR\|Failures: [1-9]\|Errors: [1-9]' "$log" 2>/dev/null &&
        { echo "=== $log"; cat "$log"; }
done
reports=$(find "$work/reports" -type f | sort)
for r in $reports; do
    echo "=== $r"
    cat "$r"
done
[ $status -eq 0 ] || { tail -n 30 "$work/check.log"; fail "make check"; }
[ -z "$reports" ] || fail "sanitizer reports (above)"
grep -h '^# \(PASS\|FAIL\|ERROR\|TOTAL\)' "$work/check.log"
cd / && rm -rf "$work"
echo "sanitize: make check passed under ASan+UBSan, no reports"
