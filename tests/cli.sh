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
expect non-numeric-device 2 \
    'needs a non-negative integer index, auto, or a list N,N,... of at most 256, got x' -- \
    "$RAMP_CL" --device x selftest
expect non-numeric-device-list 2 'auto, or a list N,N,... of at most 256, got 0,x$' -- \
    "$RAMP_CL" --device 0,x selftest
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
# Numbers a type cannot hold are out of range, not "expected a number"; input far larger or deeper
# than a config is refused at once (libyaml takes minutes on 100,000 levels).
printf 'model: {arch: small-cnn, width: 2147483648}\ndata: {dataset: mnist}\noptimizer: {lr: 1e-400}\n' \
    >"$tmp/range.yaml"
expect int-out-of-range 1 "range.yaml:1:33: model.width: '2147483648' is out of range" -- \
    "$RAMP_CL" check "$tmp/range.yaml"
expect double-out-of-range 1 "range.yaml:3:17: optimizer.lr: '1e-400' is out of range" -- \
    "$RAMP_CL" check "$tmp/range.yaml"
awk 'BEGIN { printf "model: "; for (i = 0; i < 100000; i++) printf "[";
             for (i = 0; i < 100000; i++) printf "]"; print "" }' >"$tmp/deep.yaml"
expect config-too-deep 1 'deep.yaml:1:39: nested more than 32 levels deep' -- \
    "$RAMP_CL" check "$tmp/deep.yaml"
awk 'BEGIN { for (i = 0; i < 40000; i++) print "# a comment line of some thirty bytes" }' \
    >"$tmp/huge.yaml"
expect config-too-large 1 'huge.yaml: larger than 1024 KiB' -- "$RAMP_CL" check "$tmp/huge.yaml"
# An option of another command is an error, not ignored; bench takes a finite time.
expect option-of-other-command 2 '--n is an option of eval and pair only, not of bench' -- \
    "$RAMP_CL" bench --n 5
expect option-not-of-check 2 '--batch is an option of bench only, not of check' -- \
    "$RAMP_CL" check "$srcdir/configs/natural-fmnist.yaml" --batch 5
expect bench-seconds-inf 2 'seconds from 0 to 86400, got inf' -- "$RAMP_CL" bench --seconds inf
expect bench-seconds-nan 2 'seconds from 0 to 86400, got nan' -- "$RAMP_CL" bench --seconds nan
# bench --layers: the FMA peak, then each of small-cnn's three distinct convolutions with its four
# calls, then the totals.
expect bench-layers 0 '^  all convolutions, ms *fwd [0-9.]*, dgrad [0-9.]*, wgrad [0-9.]*, dgrad-eval' \
    -- "$RAMP_CL" --device 0 bench --layers --model small-cnn --batch 4 --seconds 0
cp "$tmp/out" "$tmp/layers"
expect bench-layers-peak 0 '^FMA peak: [0-9.]* GFLOP/s' -- cat "$tmp/layers"
expect bench-layers-shapes 0 '^3$' -- \
    grep -c '^  [0-9]*x[0-9]*x[0-9]*->[0-9]* k3 s[12] (x1) *fwd  *[0-9.]' "$tmp/layers"
expect accept-unsafe-key 2 '--accept schedule.epochs: only these keys may change on resume' -- \
    "$RAMP_CL" --resume "$tmp" --accept schedule.epochs
if [ -d /usr/share/datasets/fashion-mnist ]; then
    case $RAMP_CL in /*) ;; *) RAMP_CL=$PWD/$RAMP_CL ;; esac
    run=tests/tmp/run-tiny
    rm -rf "$run"
    expect train-tiny 0 'epoch 2/2: .*clean test accuracy' -- "$RAMP_CL" "$srcdir/tests/tiny-natural.yaml"
    expect run-dir 0 'model.safetensors' -- ls "$run"
    expect metrics 0 '"epoch": 2, ' -- cat "$run/metrics.jsonl"
    expect resolved-config 0 'train_subset: 256' -- cat "$run/config.yaml"
    # Divergence stops the run with the epoch, step and tensor, saves nothing of it, and never
    # writes a non-JSON number: a NaN loss (lr 1e30), NaN BN variances under a finite loss (lr
    # 1e6), an injected NaN gradient in epoch 2 (the epoch 1 checkpoint stays and resumes).
    no_bad_numbers() { grep -E '(: |\[|, )-?(nan|inf)' "$1" || echo "no bad numbers"; }
    diverge() { # NAME LR PATTERN: a run of the tiny config with that lr
        sed -e "s/lr: 0.05/lr: $2/" -e "s|tests/tmp/run-tiny|$tmp/run-$1|" \
            "$srcdir/tests/tiny-natural.yaml" >"$tmp/$1.yaml"
        expect "$1" 1 "$3" -- "$RAMP_CL" "$tmp/$1.yaml"
        expect "$1-no-model" 0 '^none$' -- sh -c "ls '$tmp/run-$1/model.safetensors' 2>/dev/null || echo none"
    }
    diverge diverge-nan 1e30 'training diverged in epoch 1, batch [0-9] of 4 (step [0-9]): .* is not finite'
    diverge diverge-bn 1e6 'training diverged in epoch 1, .*running_var is not finite'
    expect diverge-nan-metrics 0 'no bad numbers' -- no_bad_numbers "$tmp/run-diverge-nan/metrics.jsonl"
    sed "s|tests/tmp/run-tiny|$tmp/run-nan-grad|" "$srcdir/tests/tiny-natural.yaml" >"$tmp/nan-grad.yaml"
    expect diverge-epoch-2 1 'diverged in epoch 2, batch 2 of 4 (step 6): the gradient of conv1.weight is not finite.* the last checkpoint, .*checkpoint.safetensors, is from before it' -- \
        env RAMP_CL_NAN_AFTER=6 "$RAMP_CL" "$tmp/nan-grad.yaml"
    expect diverge-epoch-2-metrics 0 '^1$' -- sh -c "wc -l <'$tmp/run-nan-grad/metrics.jsonl'"
    expect diverge-epoch-2-resumes 0 'model saved' -- "$RAMP_CL" --resume "$tmp/run-nan-grad"
    # A start-up that fails (a truncated or NaN init) leaves the earlier run in the directory as
    # it was; a config whose init is the run's own model is refused.
    (cd "$run" && ls -l && cat config.yaml metrics.jsonl) >"$tmp/run-before" 2>&1
    head -c 2000 "$run/model.safetensors" >"$tmp/truncated.safetensors"
    cp "$run/model.safetensors" "$tmp/nan.safetensors"
    hlen=$(od -An -t u1 -N4 "$tmp/nan.safetensors" | awk '{ print $1 + 256 * ($2 + 256 * ($3 + 256 * $4)) }')
    printf '\000\000\300\177' | dd of="$tmp/nan.safetensors" bs=1 seek=$((8 + hlen)) conv=notrunc 2>/dev/null
    for bad in truncated nan; do
        { cat "$srcdir/tests/tiny-natural.yaml"; echo "init: $tmp/$bad.safetensors"; } >"$tmp/$bad-init.yaml"
    done
    expect init-truncated 1 'truncated.safetensors: tensor .*run past the end' -- "$RAMP_CL" "$tmp/truncated-init.yaml"
    expect init-nan 1 'nan.safetensors: tensor conv1.weight: element 0 is NaN' -- "$RAMP_CL" "$tmp/nan-init.yaml"
    expect failed-start-keeps-run 0 '^same$' -- sh -c "(cd '$run' && ls -l && cat config.yaml metrics.jsonl) 2>&1 | cmp - '$tmp/run-before' && echo same"
    { cat "$srcdir/tests/tiny-natural.yaml"; echo "init: $run/model.safetensors"; } >"$tmp/self-init.yaml"
    expect init-is-own-output 1 "init $run/model.safetensors is this run's own $run/model.safetensors" -- \
        "$RAMP_CL" "$tmp/self-init.yaml"
    # A user's config.yaml in output.dir "." is not replaced.
    mkdir -p "$tmp/here"
    { echo "# my notes"; sed "s|dir: tests/tmp/run-tiny|dir: .|" "$srcdir/tests/tiny-natural.yaml"; } >"$tmp/here/config.yaml"
    cp "$tmp/here/config.yaml" "$tmp/my-config.yaml"
    expect own-config-kept 1 'config.yaml was not written by ramp-cl' -- sh -c "cd '$tmp/here' && '$RAMP_CL' config.yaml"
    expect own-config-same 0 '^same$' -- sh -c "cmp '$tmp/here/config.yaml' '$tmp/my-config.yaml' && echo same"
    # A run owns its directory: a second run there (another config) or a resume is refused with
    # the holder's pid and host while the first runs; a lock left by a killed run is taken over.
    sed -e 's/epochs: 2/epochs: 400/' -e "s|tests/tmp/run-tiny|$tmp/run-lock|" \
        "$srcdir/tests/tiny-natural.yaml" >"$tmp/lock-a.yaml"
    sed -e 's/lr: 0.05/lr: 0.01/' -e "s|tests/tmp/run-tiny|$tmp/run-lock|" \
        "$srcdir/tests/tiny-natural.yaml" >"$tmp/lock-b.yaml"
    while_running() { # COMMAND...: run it while lock-a.yaml trains, then stop that
        "$RAMP_CL" -q "$tmp/lock-a.yaml" & pid=$!
        i=0
        while ! grep -q "pid $pid " "$tmp/run-lock/.ramp-cl.lock" 2>/dev/null && [ $i -lt 600 ]; do
            sleep 0.1; i=$((i + 1))
        done
        "$@"; st=$?
        kill -s TERM "$pid"; wait "$pid"
        return $st
    }
    expect lock-second-run 1 "run directory $tmp/run-lock is in use by ramp-cl pid [0-9]* on host " -- \
        while_running "$RAMP_CL" "$tmp/lock-b.yaml"
    expect lock-first-config 0 'epochs: 400' -- cat "$tmp/run-lock/config.yaml"
    expect lock-resume 1 'is in use by ramp-cl pid' -- while_running "$RAMP_CL" --resume "$tmp/run-lock"
    expect lock-released 0 '^none$' -- sh -c "ls '$tmp/run-lock/.ramp-cl.lock' 2>/dev/null || echo none"
    echo "ramp-cl pid 999999999 on host gone" >"$tmp/run-lock/.ramp-cl.lock"
    expect lock-stale 0 'left by ramp-cl pid 999999999 on host gone, which ended without releasing it' -- \
        "$RAMP_CL" "$tmp/lock-b.yaml"
    # A resume refuses an edited config.yaml with the changed keys; changes that cannot alter the
    # weights pass when accepted by name.
    sed -e 's/epochs: 2/epochs: 12/' -e "s|tests/tmp/run-tiny|$tmp/run-edit|" \
        "$srcdir/tests/tiny-natural.yaml" >"$tmp/edit.yaml"
    expect edit-stopped 130 'stopped by SIGINT' -- env RAMP_CL_INTERRUPT_AFTER=9 "$RAMP_CL" "$tmp/edit.yaml"
    cp "$tmp/run-edit/config.yaml" "$tmp/edit-started.yaml"
    sed -e 's/epochs: 12/epochs: 3/' -e 's/lr: 0.05/lr: 0.1/' "$tmp/edit-started.yaml" \
        >"$tmp/run-edit/config.yaml"
    expect resume-edited 1 'config.yaml differs from the config the run started with .*: optimizer.lr: 0.05 -> 0.1; schedule.epochs: 12 -> 3' -- \
        "$RAMP_CL" --resume "$tmp/run-edit"
    sed 's/final_n: 1000/final_n: 100/' "$tmp/edit-started.yaml" >"$tmp/run-edit/config.yaml"
    expect resume-safe-change 1 'eval.final_n: 1000 -> 100.*accept each with --accept KEY' -- \
        "$RAMP_CL" --resume "$tmp/run-edit"
    expect resume-accepted 0 'resuming with accepted changes: eval.final_n: 1000 -> 100' -- \
        "$RAMP_CL" --resume "$tmp/run-edit" --accept eval.final_n
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
    # A WideResNet end to end: DeepMind's (SiLU, padding after its stride-2 convolutions),
    # normalising inside, trained with RAMP and GP; its checkpoint evaluates. The memory check
    # sizes WideResNets too and names the model.
    sed -e 's/  arch: small-cnn/  arch: dm-wrn\n  depth: 10\n  mean: [0.286]\n  std: [0.353]/' \
        -e 's/  width: 4/  width: 1/' -e 's/epochs: 2/epochs: 1/' -e 's/train_subset: 256/train_subset: 128/' \
        -e "s|tests/tmp/run-resume|$tmp/run-wrn|" "$srcdir/tests/tiny-resume.yaml" >"$tmp/wrn.yaml"
    expect wrn-train 0 'model saved to' -- "$RAMP_CL" "$tmp/wrn.yaml"
    expect wrn-eval 0 'Clean .*Union' -- "$RAMP_CL" eval "$tmp/wrn.yaml" --protocol fast --n 20
    sed -e 's/batch_size: 64/batch_size: 20000000/' -e 's/depth: 10/depth: 28/' \
        -e 's/width: 1/width: 10/' "$tmp/wrn.yaml" >"$tmp/wrn-big.yaml"
    expect memory-advice-wrn 1 'of device memory for dm-wrn-28-10 with ramp.* the largest batch that fits is about [0-9]' -- \
        "$RAMP_CL" "$tmp/wrn-big.yaml"
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
    expect shipped-configs 0 '^all valid$' -- check_shipped
    # the key-pair command on two stand-in checkpoints, writing a fine-tuning config that loads
    printf 'model: {arch: small-cnn, width: 4}\ndata: {dataset: fashion-mnist}\nmethod: ramp\nthreat_models:\n  - {norm: linf, eps: 0.1}\n  - {norm: l2, eps: 1.5}\n  - {norm: l1, eps: 10}\noutput: {dir: %s/run-pair}\n' "$tmp" >"$tmp/pair.yaml"
    expect pair 0 'key tradeoff pair: q = ' -- "$RAMP_CL" pair "$tmp/pair.yaml" \
        --linf "$run/model.safetensors" --l1 "$run/model.safetensors" --n 20 --write "$tmp/ft.yaml"
    expect pair-config 0 "init: \"$run/model.safetensors\"" -- "$RAMP_CL" check "$tmp/ft.yaml"
    expect pair-fresh-dir 0 '^  dir: "runs/ft' -- cat "$tmp/ft.yaml"
    # ramp.pair: auto runs the heuristic before training and records the decision in config.yaml
    sed -e "s|  pair: \\[linf, l1\\]|  pair: auto\\n  at_checkpoints: {linf: $run/model.safetensors, l1: $tmp/uninterrupted.safetensors}|" \
        -e 's/epochs: 2/epochs: 1/' -e "s|tests/tmp/run-resume|$tmp/run-auto|" \
        "$srcdir/tests/tiny-resume.yaml" >"$tmp/auto.yaml"
    expect pair-auto 0 'key tradeoff pair: q = ' -- "$RAMP_CL" "$tmp/auto.yaml"
    expect pair-auto-recorded 0 '^  pair: \[l' -- cat "$tmp/run-auto/config.yaml"
    expect pair-auto-init 0 '^init: "' -- cat "$tmp/run-auto/config.yaml"
    # robust evaluation of a checkpoint: the table and the per-point JSON, eval-fast.json for the
    # run's own model; another checkpoint's report is named after it and leaves that one alone
    sed "s|$tmp/run-pair|$run|" "$tmp/pair.yaml" >"$tmp/eval-own.yaml"
    expect eval-fast 0 'Clean .*Union' -- "$RAMP_CL" eval "$tmp/eval-own.yaml" --protocol fast --n 20
    cp "$tmp/out" "$tmp/fast.out"
    expect eval-fast-bound 0 'fast protocol: APGD-CE only, an upper bound' -- cat "$tmp/fast.out"
    expect eval-fast-command 0 '^  ramp-cl eval .* --protocol standard --n 20$' -- cat "$tmp/fast.out"
    expect eval-json 0 '"points": {' -- cat "$run/eval-fast.json"
    cp "$run/eval-fast.json" "$tmp/own-report.json"
    expect eval-other 0 "outcomes in $run/eval-fast-${tmp##*/}-uninterrupted.json" -- \
        "$RAMP_CL" eval "$tmp/eval-own.yaml" --checkpoint "$tmp/uninterrupted.safetensors" \
        --protocol fast --n 20
    expect eval-other-keeps-own 0 '^same$' -- sh -c "cmp '$run/eval-fast.json' '$tmp/own-report.json' && echo same"
    expect eval-n-too-many 1 '--n 999999: fashion-mnist-test has 10000 points' -- \
        "$RAMP_CL" eval "$tmp/eval-own.yaml" --n 999999
    # AutoAttack's standard version: on the natural model nothing survives (the union, the last
    # column, is 0), and each attack's count is reported
    expect eval-standard 0 '^square ' -- "$RAMP_CL" eval "$tmp/eval-own.yaml" --protocol standard \
        --n 20
    cp "$tmp/out" "$tmp/standard.out"
    expect eval-standard-union 0 '%  *0\.00%$' -- cat "$tmp/standard.out"
    expect eval-standard-json 0 '"square": {"broken": ' -- cat "$run/eval-standard.json"
    expect bad-protocol 2 'must be fast, full or standard' -- "$RAMP_CL" eval "$tmp/eval-own.yaml" \
        --protocol strong
    # Without HOME the kernel cache falls back to the account's home, or says why there is none.
    expect no-home-cache 1 'kernel cache /\|warning: .*kernel cache' -- env -u HOME -u XDG_CACHE_HOME \
        -u RAMP_CL_CACHE_DIR "$RAMP_CL" --verbose eval "$tmp/eval-own.yaml" --checkpoint "$tmp/none"
    # the training run's curves and the evaluation's bars in one SVG
    expect plot 0 "wrote $tmp/plot.svg" -- "$RAMP_CL" plot "$run" "$rrun" -o "$tmp/plot.svg"
    expect plot-svg 0 '>run-tiny</tspan>' -- cat "$tmp/plot.svg"
    expect pair-needs-two 1 'at least two norms' -- "$RAMP_CL" pair "$tmp/pair.yaml" \
        --l1 "$run/model.safetensors" --n 20
else
    echo "note: /usr/share/datasets/fashion-mnist missing (Debian package dataset-fashion-mnist):"
    echo "      the training run test is not run"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
