#!/bin/sh
# One-command device report: tools/device-report.sh [DEVICE] [OUT.md]
#
# On OpenCL device DEVICE (an index of `ramp-cl --list-devices`, default 0), for both device
# classes (RAMP_CL_PATH=cpu and gpu): `ramp-cl selftest`, the PyTorch-parity and
# finite-difference tests of the layers and models (tests/check_layers, tests/check_model) and
# `ramp-cl bench` for small-cnn and PreAct ResNet-18; then, when python3 can import torch, the
# same workloads in PyTorch (tools/bench_pytorch.py and tools/bench_ramp_pytorch.py) on CUDA if
# PyTorch sees a GPU, else on the CPU. Writes one markdown file (default
# device-report-DEVICE.md): the device, its driver, pass/fail per class, images/s and GFLOP/s per
# workload and the ratio to PyTorch. Run it from a built tree (after `make` and `make check` or
# `make tests/check_layers tests/check_model`); the raw logs go to OUT.md's directory under
# device-report-DEVICE.logs/.
#
# Environment: RAMP_CL (the binary, default ./ramp-cl), PYTHON (a python3 with torch; tried
# before python3 and /usr/bin/python3), MODELS (default "small-cnn
# preact-resnet18"; a RAMP batch of PreAct ResNet-18 takes minutes on a CPU), BENCH_SECONDS (per
# workload, default 1), BATCH (default 128), TORCH_THREADS (PyTorch CPU threads, default: every
# CPU).
set -u
dev=${1:-0}
out=${2:-device-report-$dev.md}
RAMP_CL=${RAMP_CL:-./ramp-cl}
here=$(cd "$(dirname "$0")" && pwd)
BENCH_SECONDS=${BENCH_SECONDS:-1}
BATCH=${BATCH:-128}
MODELS=${MODELS:-small-cnn preact-resnet18}
logs=${out%.md}.logs
mkdir -p "$logs" || exit 1
export RAMP_CL_TEST_DEVICE=$dev
export RAMP_CL_SRCDIR=${RAMP_CL_SRCDIR:-$here/..}
export RAMP_CL_TEST_TMP=${RAMP_CL_TEST_TMP:-$logs/tmp}
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-900}
mkdir -p "$RAMP_CL_TEST_TMP"
t_start=$(date +%s)
step() { echo "device-report: $* ($(($(date +%s) - t_start)) s)" >&2; }

"$RAMP_CL" --device "$dev" --list-devices >"$logs/devices.txt" 2>&1 || {
    cat "$logs/devices.txt" >&2
    exit 1
}
# The block of our device in --list-devices.
awk -v d="[$dev]" 'index($0, d) == 1 { on = 1; print; next } /^\[/ { on = 0 } on' \
    "$logs/devices.txt" >"$logs/device.txt"
[ -s "$logs/device.txt" ] || { echo "device-report: no device $dev" >&2; exit 1; }
name=$(head -1 "$logs/device.txt" | sed 's/^\[[0-9]*\] //')

# suite NAME LOG: "PASS (n checks)" or "FAIL (...)" from a Check log
suite_result() {
    line=$(grep -E '^[0-9]+%: Checks' "$2" | tail -1)
    case $line in
        100%*) echo "PASS ($line)" | sed 's/100%: //' ;;
        '') echo "FAIL (did not finish; see $2)" ;;
        *) echo "FAIL (${line#*: }; see $2)" ;;
    esac
}

for cls in cpu gpu; do
    step "class $cls: selftest"
    if RAMP_CL_PATH=$cls "$RAMP_CL" --device "$dev" selftest >"$logs/selftest-$cls.txt" 2>&1; then
        eval "selftest_$cls=PASS"
    else
        eval "selftest_$cls=\"FAIL (see $logs/selftest-$cls.txt)\""
    fi
    for t in check_layers check_model; do
        step "class $cls: $t"
        bin=$(dirname "$RAMP_CL")/tests/$t
        if [ -x "$bin" ]; then
            RAMP_CL_PATH=$cls "$bin" >"$logs/$t-$cls.txt" 2>&1
            eval "${t}_$cls=\"$(suite_result $t "$logs/$t-$cls.txt")\""
        else
            eval "${t}_$cls=\"not built (make $t)\""
        fi
    done
    : >"$logs/bench-$cls.txt"
    for m in $MODELS; do
        step "class $cls: bench $m"
        RAMP_CL_PATH=$cls "$RAMP_CL" --device "$dev" bench --model "$m" --batch "$BATCH" \
            --seconds "$BENCH_SECONDS" >>"$logs/bench-$cls.txt" 2>&1 ||
            echo "(bench failed: see $logs/bench-$cls.txt)" >&2
    done
done

# PyTorch on the same machine, CUDA when it has a GPU.
torch_dev=
py=
for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if "$p" -c 'import torch' 2>/dev/null; then py=$p; break; fi
done
if [ -n "$py" ]; then
    torch_dev=$("$py" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
    threads=${TORCH_THREADS:-$(nproc)}
    : >"$logs/pytorch.txt"
    for m in $MODELS; do
        step "PyTorch ($torch_dev): bench_pytorch.py $m"
        "$py" "$here/bench_pytorch.py" --device "$torch_dev" --threads "$threads" \
            --batch "$BATCH" --model "$m" >>"$logs/pytorch.txt" 2>&1
    done
    for m in $MODELS; do
        for gp in --no-gp --gp; do
            step "PyTorch ($torch_dev): bench_ramp_pytorch.py $m $gp"
            "$py" "$here/bench_ramp_pytorch.py" --device "$torch_dev" --threads "$threads" \
                --batch "$BATCH" --model "$m" "$gp" --batches 3 \
                >"$logs/pytorch-ramp-$m$gp.txt" 2>&1
        done
    done
fi

# records FILE: "model workload images/s GFLOP/s" per line from a ramp-cl bench or
# bench_pytorch.py output (the model header lines start with "small-cnn:" / "preact-resnet18:").
records() {
    awk '/^(small-cnn|preact-resnet18): / { m = $1; sub(":", "", m) }
         m && $1 ~ /^(train|forward|attack)$/ && $NF ~ /^[0-9.]+$/ { print m, $1, $(NF - 1), $NF }
         m && $1 ~ /^(ramp|ramp\+gp)$/ && NF == 3 { print m, $1, $3, "-" }' "$1"
}
# torch_ramp MODEL GP: images/s of bench_ramp_pytorch.py's log
torch_ramp() {
    sed -n 's/^per batch: .* -> \([0-9.]*\) images\/s$/\1/p' "$logs/pytorch-ramp-$1$2.txt" \
        2>/dev/null
}
records "$logs/bench-cpu.txt" >"$logs/cpu.rec"
records "$logs/bench-gpu.txt" >"$logs/gpu.rec"
: >"$logs/torch.rec"
if [ -n "$torch_dev" ]; then
    records "$logs/pytorch.txt" >"$logs/torch.rec"
    for m in $MODELS; do
        v=$(torch_ramp $m --no-gp)
        [ -n "$v" ] && echo "$m ramp $v -" >>"$logs/torch.rec"
        v=$(torch_ramp $m --gp)
        [ -n "$v" ] && echo "$m ramp+gp $v -" >>"$logs/torch.rec"
    done
fi

{
    echo "# ramp-cl device report: $name"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $("$RAMP_CL" --version | head -1), host CPU:" \
        "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1) ($(nproc) logical CPUs)."
    echo "Command: \`tools/device-report.sh $dev\` (batch $BATCH, at least $BENCH_SECONDS s per" \
        "workload); logs in \`$logs\`."
    echo
    echo '```'
    cat "$logs/device.txt"
    echo '```'
    echo
    echo "| class | selftest | layer tests (check_layers) | model tests (check_model) |"
    echo "|---|---|---|---|"
    for cls in cpu gpu; do
        eval "echo \"| $cls | \$selftest_$cls | \$check_layers_$cls | \$check_model_$cls |\""
    done
    echo
    if [ -n "$torch_dev" ]; then
        echo "PyTorch $("$py" -c 'import torch; print(torch.__version__)') on $torch_dev" \
            "($(grep -m1 '^torch ' "$logs/pytorch.txt" | sed 's/^torch [^,]*, //'))."
    else
        echo "PyTorch: not importable here, no ratios."
    fi
    echo
    echo "| model | workload | cpu class images/s (GFLOP/s) | gpu class images/s (GFLOP/s) |" \
        "PyTorch images/s (GFLOP/s) | best class / PyTorch |"
    echo "|---|---|---|---|---|---|"
    for m in $MODELS; do
        for w in train forward attack ramp ramp+gp; do
            awk -v m=$m -v w=$w '
                FILENAME ~ /cpu.rec$/ && $1 == m && $2 == w { c = $3; cg = $4 }
                FILENAME ~ /gpu.rec$/ && $1 == m && $2 == w { g = $3; gg = $4 }
                FILENAME ~ /torch.rec$/ && $1 == m && $2 == w { t = $3; tg = $4 }
                function fmt(v, f) { return v == "" ? "-" : (f == "-" ? v : v " (" f ")") }
                END {
                    if (c == "" && g == "" && t == "") exit
                    best = (c + 0 > g + 0) ? c : g
                    ratio = (t + 0 > 0 && best != "") ? sprintf("%.2f", best / t) : "-"
                    printf "| %s | %s | %s | %s | %s | %s |\n", m, w, fmt(c, cg), fmt(g, gg),
                           fmt(t, tg), ratio
                }' "$logs/cpu.rec" "$logs/gpu.rec" "$logs/torch.rec"
        done
    done
    echo
    echo "train/forward/attack: one step of batch $BATCH (attack = forward + input gradient);" \
        "ramp: one RAMP batch (APGD 10 l_inf + 10 l_1 steps, lambda 1.5), +gp with GP's natural" \
        "step; PyTorch's RAMP batch from tools/bench_ramp_pytorch.py."
    echo "Total time of this report: $(($(date +%s) - t_start)) s."
} >"$out"
step "wrote $out"
