#!/bin/sh
# Command-line behaviour of the built ramp-cl: help, version, device listing, errors, selftest.
# Prints TAP-free plain lines and a closing "N passed, N failed".
RAMP_CL=${RAMP_CL:-./ramp-cl}
tmp=$(mktemp -d "${RAMP_CL_TEST_TMP:-/tmp}/cli-XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

# expect NAME WANT_STATUS PATTERN -- COMMAND...: run, check exit status and that output matches.
expect() {
    name=$1 want=$2 pattern=$3
    shift 4
    "$@" >"$tmp/out" 2>&1
    got=$?
    if [ "$got" -eq "$want" ] && grep -q -e "$pattern" "$tmp/out"; then
        echo "PASS: $name"
        pass=$((pass + 1))
    else
        echo "FAIL: $name (exit $got, wanted $want; pattern '$pattern'); output:"
        sed 's/^/    /' "$tmp/out"
        fail=$((fail + 1))
    fi
}

expect help 0 'Usage: ramp-cl' -- "$RAMP_CL" --help
expect version 0 '^ramp-cl [0-9]' -- "$RAMP_CL" --version
expect list-devices 0 'compute units:' -- "$RAMP_CL" --list-devices
expect list-devices-index 0 '^\[0\] ' -- "$RAMP_CL" --list-devices
expect bad-device-index 1 'no OpenCL device with index 42; .* exist: \[0\]' -- \
    "$RAMP_CL" --device 42 selftest
expect non-numeric-device 2 'needs a non-negative integer index, got x' -- \
    "$RAMP_CL" --device x selftest
expect unknown-option 2 'unknown option --frobnicate' -- "$RAMP_CL" --frobnicate
expect unknown-command 2 'unknown command frobnicate' -- "$RAMP_CL" frobnicate
# An ICD loader that finds no vendor file: the user is told to install one.
mkdir -p "$tmp/no-icds"
expect no-platform 1 'no OpenCL platform found: install an OpenCL driver' -- \
    env OCL_ICD_VENDORS="$tmp/no-icds" "$RAMP_CL" --list-devices
expect selftest 0 '^selftest: PASS' -- "$RAMP_CL" --device 0 selftest
expect selftest-flag 0 'CLBlast SGEMM .*PASS' -- "$RAMP_CL" --selftest
# A second run loads every program from the cache: nothing is compiled again.
expect selftest-cached 0 '0 built from source, 1 loaded' -- "$RAMP_CL" --verbose selftest

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
