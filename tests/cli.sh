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
    # Resume: a RAMP run with gradient projection stopped by SIGINT (raised by the test hook after
    # N steps: mid GP natural pass, mid training pass, at an epoch's end, in epoch 2) and resumed
    # ends with the same bytes as the uninterrupted run.
    rrun=tests/tmp/run-resume
    rm -rf "$rrun"
    expect resume-reference 0 'model saved to' -- "$RAMP_CL" "$srcdir/tests/tiny-resume.yaml"
    cp "$rrun/model.safetensors" "$tmp/uninterrupted.safetensors"
    for k in 3 6 8 10; do
        rm -rf "$rrun"
        expect "interrupt-after-$k" 130 'stopped by SIGINT .*continue with: ramp-cl --resume' -- \
            env RAMP_CL_INTERRUPT_AFTER=$k "$RAMP_CL" "$srcdir/tests/tiny-resume.yaml"
        expect "resume-after-$k" 0 'resuming .* at epoch' -- "$RAMP_CL" --resume "$rrun"
        expect "resume-bit-exact-$k" 0 '^same$' -- \
            sh -c "cmp '$rrun/model.safetensors' '$tmp/uninterrupted.safetensors' && echo same"
        expect "resume-metrics-$k" 0 '^2$' -- sh -c "wc -l <'$rrun/metrics.jsonl'"
    done
    # A real SIGTERM to a longer run: checkpoint, exit 143, no temporary file left, resumable.
    # Two signals in a row: the process ends at once, still without a partial file.
    sed -e 's/epochs: 2/epochs: 400/' -e "s|tests/tmp/run-resume|$tmp/run-term|" \
        "$srcdir/tests/tiny-resume.yaml" >"$tmp/long.yaml"
    signal_after() { # SECONDS SIGNALS... -- COMMAND...: run COMMAND, send the signals, wait
        secs=$1; shift; sigs=
        while [ "$1" != -- ]; do sigs="$sigs $1"; shift; done; shift
        "$@" & pid=$!
        sleep "$secs"
        for s in $sigs; do kill -s "$s" "$pid"; sleep 0.3; done
        wait "$pid"
    }
    only_run_files() { ls "$1" | grep -v -x -e checkpoint.safetensors -e config.yaml \
        -e metrics.jsonl -e model.safetensors | sed 's/^/unexpected file: /'; echo checked; }
    expect sigterm 143 'stopped by SIGTERM' -- signal_after 4 TERM -- "$RAMP_CL" "$tmp/long.yaml"
    expect sigterm-no-partial 0 '^checked$' -- only_run_files "$tmp/run-term"
    expect sigterm-resumes 130 'stopped by SIGINT' -- \
        signal_after 3 INT -- "$RAMP_CL" --resume "$tmp/run-term"
    # (steps of about a second here, so the second signal arrives inside the step)
    sed -e 's/steps: 2/steps: 60/' -e 's/batch_size: 64/batch_size: 256/' \
        -e 's/train_subset: 256/train_subset: 2048/' -e "s|$tmp/run-term|$tmp/run-slow|" \
        "$tmp/long.yaml" >"$tmp/slow.yaml"
    at_once() { # the second signal, sent once the first was seen, ends the run before any
                # checkpoint message
        "$RAMP_CL" "$tmp/slow.yaml" >"$tmp/twice" 2>&1 & pid=$!
        sleep 4
        kill -s TERM "$pid"
        i=0
        while ! grep -q 'stopping after this step' "$tmp/twice" && [ $i -lt 200 ]; do
            sleep 0.05; i=$((i + 1))
        done
        kill -s TERM "$pid"
        wait "$pid"
        echo "exit $?"; grep -q 'stopped by' "$tmp/twice" || echo "ended at once"; }
    expect second-signal 0 '^ended at once$' -- at_once
    expect second-signal-no-partial 0 '^checked$' -- only_run_files "$tmp/run-slow"
    # A failing launch (injected after about one epoch): a clear error, complete files only, and
    # the run resumes from its last checkpoint to the same weights as the uninterrupted run.
    sed "s|tests/tmp/run-resume|$tmp/run-fault|" "$srcdir/tests/tiny-resume.yaml" >"$tmp/fault.yaml"
    expect launch-fault 1 'CL_OUT_OF_RESOURCES.*ramp-cl --resume' -- \
        env RAMP_CL_FAIL_LAUNCH=3000 "$RAMP_CL" "$tmp/fault.yaml"
    expect launch-fault-files 0 '^checked$' -- only_run_files "$tmp/run-fault"
    expect launch-fault-metrics 0 '^ok$' -- sh -c "grep -v '}\$' '$tmp/run-fault/metrics.jsonl' || echo ok"
    expect launch-fault-resume 0 'model saved' -- "$RAMP_CL" --resume "$tmp/run-fault"
    expect launch-fault-bit-exact 0 '^same$' -- \
        sh -c "cmp '$tmp/run-fault/model.safetensors' '$tmp/uninterrupted.safetensors' && echo same"
    # E-AT draws between l_inf and l_1 by default (as the published E-AT): its per-epoch report
    # names those two, with an accuracy each, and not l_2.
    sed -e 's/method: ramp/method: eat/' -e 's/epochs: 2/epochs: 1/' \
        -e "s|tests/tmp/run-resume|$tmp/run-eat|" "$srcdir/tests/tiny-resume.yaml" >"$tmp/eat.yaml"
    expect eat-draws-linf-l1 0 'E-AT robust accuracy during training: linf [0-9.]*% l1 [0-9.]*%$' -- \
        "$RAMP_CL" "$tmp/eat.yaml"
    # A batch that cannot fit in device memory is refused before training, with the largest one
    # that fits.
    sed -e 's/batch_size: 64/batch_size: 20000000/' -e "s|tests/tmp/run-resume|$tmp/run-big|" \
        "$srcdir/tests/tiny-resume.yaml" >"$tmp/big.yaml"
    expect memory-advice 1 'needs about .* GiB of device memory .* the largest batch that fits is about [0-9]' -- \
        "$RAMP_CL" "$tmp/big.yaml"
    expect memory-advice-no-run-dir 0 '^none$' -- sh -c "ls '$tmp/run-big' 2>/dev/null || echo none"
    expect resume-not-a-run 1 'not a run directory' -- "$RAMP_CL" --resume "$tmp/nowhere"
    # Every shipped config validates (CIFAR-10 data and the checkpoints they start from are
    # stand-ins: an empty directory and a small checkpoint at the paths the configs name).
    check_shipped() {
        mkdir -p "$tmp/shipped/data/cifar-10-batches-bin"
        bad=0
        for f in "$srcdir"/configs/*.yaml "$srcdir"/configs/cifar10/*.yaml "$srcdir"/configs/cifar10/*/*.yaml; do
            case $f in /*) ;; *) f=$PWD/$f ;; esac
            init=$(sed -n 's/^init: *//p' "$f" | tr -d '"')
            if [ -n "$init" ]; then
                mkdir -p "$tmp/shipped/$(dirname "$init")"
                cp "$run/model.safetensors" "$tmp/shipped/$init"
            fi
            (cd "$tmp/shipped" && "$RAMP_CL" check "$f" >/dev/null 2>"$tmp/shipped.err") ||
                { echo "$f:"; cat "$tmp/shipped.err"; bad=1; }
        done
        [ $bad = 0 ] && echo "all valid"
    }
    case $RAMP_CL in /*) ;; *) RAMP_CL=$PWD/$RAMP_CL ;; esac
    expect shipped-configs 0 '^all valid$' -- check_shipped
    # the key-pair command on two stand-in checkpoints, writing a fine-tuning config that loads
    printf 'model: {arch: small-cnn, width: 4}\ndata: {dataset: fashion-mnist}\nmethod: ramp\nthreat_models:\n  - {norm: linf, eps: 0.1}\n  - {norm: l2, eps: 1.5}\n  - {norm: l1, eps: 10}\noutput: {dir: %s/run-pair}\n' "$tmp" >"$tmp/pair.yaml"
    expect pair 0 'key tradeoff pair: q = ' -- "$RAMP_CL" pair "$tmp/pair.yaml" \
        --linf "$run/model.safetensors" --l1 "$run/model.safetensors" --n 20 --write "$tmp/ft.yaml"
    expect pair-config 0 "init: \"$run/model.safetensors\"" -- "$RAMP_CL" check "$tmp/ft.yaml"
    # ramp.pair: auto runs the heuristic before training and records the decision in config.yaml
    sed -e "s|  pair: \\[linf, l1\\]|  pair: auto\\n  at_checkpoints: {linf: $run/model.safetensors, l1: $tmp/uninterrupted.safetensors}|" \
        -e 's/epochs: 2/epochs: 1/' -e "s|tests/tmp/run-resume|$tmp/run-auto|" \
        "$srcdir/tests/tiny-resume.yaml" >"$tmp/auto.yaml"
    expect pair-auto 0 'key tradeoff pair: q = ' -- "$RAMP_CL" "$tmp/auto.yaml"
    expect pair-auto-recorded 0 '^  pair: \[l' -- cat "$tmp/run-auto/config.yaml"
    expect pair-auto-init 0 '^init: "' -- cat "$tmp/run-auto/config.yaml"
    # robust evaluation of a checkpoint: the table and the per-point JSON
    expect eval-fast 0 'Clean .*Union' -- "$RAMP_CL" eval "$tmp/pair.yaml" \
        --checkpoint "$run/model.safetensors" --protocol fast --n 20
    cp "$tmp/out" "$tmp/fast.out"
    expect eval-fast-bound 0 'fast protocol: APGD-CE only, an upper bound' -- cat "$tmp/fast.out"
    expect eval-fast-command 0 '^  ramp-cl eval .* --protocol standard --n 20$' -- cat "$tmp/fast.out"
    expect eval-json 0 '"points": {' -- cat "$tmp/run-pair/eval-fast.json"
    # AutoAttack's standard version: on the natural model nothing survives (the union, the last
    # column, is 0), and each attack's count is reported
    expect eval-standard 0 '^square ' -- "$RAMP_CL" eval "$tmp/pair.yaml" \
        --checkpoint "$run/model.safetensors" --protocol standard --n 20
    cp "$tmp/out" "$tmp/standard.out"
    expect eval-standard-union 0 '%  *0\.00%$' -- cat "$tmp/standard.out"
    expect eval-standard-json 0 '"square": {"broken": ' -- cat "$tmp/run-pair/eval-standard.json"
    expect bad-protocol 2 'must be fast, full or standard' -- "$RAMP_CL" eval "$tmp/pair.yaml" \
        --protocol strong
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
