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
expect bad-device-index 1 'no OpenCL device with index 42; [0-9]* devices* exists*: \[0\]' -- \
    "$RAMP_CL" --device 42 selftest
expect non-numeric-device 2 'needs a non-negative integer index, got x' -- \
    "$RAMP_CL" --device x selftest
expect unknown-option 2 'unknown option --frobnicate' -- "$RAMP_CL" --frobnicate
expect unknown-command 2 'unknown command frobnicate' -- "$RAMP_CL" frobnicate
expect plot-no-run 2 'plot needs at least one run directory' -- "$RAMP_CL" plot
expect plot-missing-run 1 "run directory $tmp/nope: No such file" -- "$RAMP_CL" plot "$tmp/nope"
# An ICD loader that finds no vendor file: the user is told to install one.
mkdir -p "$tmp/no-icds"
expect no-platform 1 'no OpenCL platform found: install an OpenCL driver' -- \
    env OCL_ICD_VENDORS="$tmp/no-icds" "$RAMP_CL" --list-devices
expect selftest 0 '^selftest: PASS' -- "$RAMP_CL" --device 0 selftest
expect selftest-flag 0 'CLBlast SGEMM 67x45x33: .*PASS' -- "$RAMP_CL" --selftest
# A second run loads every program from the cache: nothing is compiled again.
expect selftest-cached 0 '0 built from source, [1-9][0-9]* loaded' -- "$RAMP_CL" --verbose selftest

# Configs: validation without running, errors with file:line:column, a whole tiny training run.
srcdir=${RAMP_CL_SRCDIR:-.}
expect check-config 0 'arch: small-cnn' -- "$RAMP_CL" check "$srcdir/configs/natural-fmnist.yaml"
printf 'model:\n  arch: small-cnn\ndata:\n  dataset: fashion-mnist\n  batchsize: 3\n' >"$tmp/bad.yaml"
expect bad-config 1 "bad.yaml:5:3: unknown key 'batchsize' in data (did you mean 'batch_size'?)" -- \
    "$RAMP_CL" check "$tmp/bad.yaml"
expect bad-config-train 1 "bad.yaml:5:3: unknown key" -- "$RAMP_CL" "$tmp/bad.yaml"
printf 'model: {arch: small-cnn}\ndata: {dataset: mnist, path: /nonexistent/mnist}\n' >"$tmp/nodata.yaml"
expect missing-data 1 '/nonexistent/mnist' -- "$RAMP_CL" check "$tmp/nodata.yaml"
if [ -d /usr/share/datasets/fashion-mnist ]; then
    run=tests/tmp/run-tiny
    rm -rf "$run"
    expect train-tiny 0 'epoch 2/2: .*clean test accuracy' -- "$RAMP_CL" "$srcdir/tests/tiny-natural.yaml"
    expect run-dir 0 'model.safetensors' -- ls "$run"
    expect metrics 0 '"epoch": 2, ' -- cat "$run/metrics.jsonl"
    expect resolved-config 0 'train_subset: 256' -- cat "$run/config.yaml"
    # the key-pair command on two stand-in checkpoints, writing a fine-tuning config that loads
    printf 'model: {arch: small-cnn, width: 4}\ndata: {dataset: fashion-mnist}\nmethod: ramp\nthreat_models:\n  - {norm: linf, eps: 0.1}\n  - {norm: l2, eps: 1.5}\n  - {norm: l1, eps: 10}\noutput: {dir: %s/run-pair}\n' "$tmp" >"$tmp/pair.yaml"
    expect pair 0 'key tradeoff pair: q = ' -- "$RAMP_CL" pair "$tmp/pair.yaml" \
        --linf "$run/model.safetensors" --l1 "$run/model.safetensors" --n 20 --write "$tmp/ft.yaml"
    expect pair-config 0 "init: \"$run/model.safetensors\"" -- "$RAMP_CL" check "$tmp/ft.yaml"
    # robust evaluation of a checkpoint: the table and the per-point JSON
    expect eval-fast 0 'Clean .*Union' -- "$RAMP_CL" eval "$tmp/pair.yaml" \
        --checkpoint "$run/model.safetensors" --protocol fast --n 20
    expect eval-json 0 '"points": {' -- cat "$tmp/run-pair/eval-fast.json"
    # the training run's curves and the evaluation's bars in one SVG
    expect plot 0 "wrote $tmp/plot.svg" -- "$RAMP_CL" plot "$run" "$tmp/run-pair" -o "$tmp/plot.svg"
    expect plot-svg 0 '>run-tiny</tspan>' -- cat "$tmp/plot.svg"
    expect pair-needs-two 1 'at least two norms' -- "$RAMP_CL" pair "$tmp/pair.yaml" \
        --l1 "$run/model.safetensors" --n 20
else
    echo "note: /usr/share/datasets/fashion-mnist missing (Debian package dataset-fashion-mnist):"
    echo "      the training run test is not run"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
