#!/bin/sh
# Whole-run agreement across OpenCL implementations and device classes: the same fine-tuning runs
# (tests/agree.yaml: RAMP with gradient projection, and E-AT, two epochs of a narrow small-cnn,
# then the fast evaluation of 100 test points) on
#   pocl-cpu   PoCL, CPU class: the reference
#   pocl-gpu   PoCL, GPU class (RAMP_CL_PATH=gpu): CLBlast GEMMs and the GPU-class kernels
#   rusticl    Mesa rusticl on llvmpipe, GPU class (the path of rusticl's GPUs, radeonsi and iris;
#              llvmpipe runs the CPU class's GEMM kernels far slower), when mesa-opencl-icd is
#              installed
# all from one natural model trained on the reference. Each must end with every weight tensor
# within WEIGHT_TOL of the reference's (max |a - b| / max(1, max |a|), tests/tensor_diff) and
# every entry of the evaluation table within one test point. Oclgrind (an interpreter) runs only a
# far smaller run in reasonable time: tests/oclgrind.sh checks its agreement with PoCL.
# RAMP_CL_IMPLEMENTATIONS (a space-separated subset of the names above) limits the set.
# Prints a closing "N passed, N failed"; exits 77 (skipped) without Fashion-MNIST.
RAMP_CL=${RAMP_CL:-./ramp-cl}
srcdir=${RAMP_CL_SRCDIR:-.}
TENSOR_DIFF=${TENSOR_DIFF:-$(dirname "$RAMP_CL")/tests/tensor_diff}
WEIGHT_TOL=1e-3
VENDORS=/etc/OpenCL/vendors
[ -d /usr/share/datasets/fashion-mnist ] || { echo "SKIP: no Fashion-MNIST"; exit 77; }
tmp=$(mktemp -d "${RAMP_CL_TEST_TMP:-/tmp}/impl-XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { echo "PASS: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; fail=$((fail + 1)); }

# on IMPL COMMAND...: run COMMAND on implementation IMPL (environment and wrapper).
on() {
    impl=$1
    shift
    case $impl in
        pocl-cpu) env ${POCL_ICD:+OCL_ICD_VENDORS=$POCL_ICD} RAMP_CL_PATH=cpu "$@" ;;
        pocl-gpu) env ${POCL_ICD:+OCL_ICD_VENDORS=$POCL_ICD} RAMP_CL_PATH=gpu "$@" ;;
        rusticl) env OCL_ICD_VENDORS=$VENDORS/rusticl.icd RUSTICL_ENABLE=llvmpipe RAMP_CL_PATH=gpu "$@" ;;
    esac
}

available() {
    case $1 in
        pocl-cpu | pocl-gpu) return 0 ;;
        rusticl) [ -f $VENDORS/rusticl.icd ] ;;
    esac
}

# With several ICDs installed, PoCL's own file keeps its device at index 0.
[ -f $VENDORS/pocl.icd ] && POCL_ICD=$VENDORS/pocl.icd

# config NAME METHOD: a copy of tests/agree.yaml for method ramp or eat, starting from the
# natural model.
config() {
    out=$tmp/$1.yaml
    sed -e "s|^  dir: .*|  dir: $tmp/$1|" -e "s|^method: ramp|init: $tmp/natural/model.safetensors\nmethod: $2|" \
        "$srcdir/tests/agree.yaml" >"$out"
    echo "$out"
}

# table FILE: the evaluation table's percentages (clean, each norm, union) on one line.
table() { grep -A1 '^Clean ' "$1" | tail -1 | tr -d '%'; }

# within_one_point A B N: every entry of tables A and B within 100/N percentage points.
within_one_point() {
    echo "$1 $2" | awk -v n="$3" '{ k = NF / 2; for (i = 1; i <= k; i++)
        if ($i - $(i + k) > 100 / n + 1e-6 || $(i + k) - $i > 100 / n + 1e-6) exit 1 }'
}

# The natural model every run starts from, trained on the reference.
cat >"$tmp/natural.yaml" <<EOF
model: {arch: small-cnn, width: 4}
data: {dataset: fashion-mnist, train_subset: 1024, batch_size: 64, eval_batch_size: 100}
method: natural
optimizer: {lr: 0.05, lr_all_groups: true}
schedule: {name: constant, epochs: 3}
eval: {every: 0, n: 100, final_protocol: none}
output: {dir: $tmp/natural}
EOF
if ! on pocl-cpu "$RAMP_CL" --quiet "$tmp/natural.yaml" >"$tmp/natural.log" 2>&1; then
    sed 's/^/    /' "$tmp/natural.log"
    bad "natural model on pocl-cpu"
    echo "$pass passed, $fail failed"
    exit 1
fi

want=
for impl in ${RAMP_CL_IMPLEMENTATIONS:-pocl-gpu rusticl}; do
    available "$impl" && want="$want $impl"
done
n=100
for method in ramp eat; do
    ref=pocl-cpu-$method
    for impl in pocl-cpu $want; do
        name=$impl-$method
        t0=$(date +%s)
        if on "$impl" "$RAMP_CL" --quiet "$(config "$name" $method)" >"$tmp/$name.log" 2>&1 &&
            table "$tmp/$name.log" | grep -q .; then
            echo "$name: $(table "$tmp/$name.log") ($(($(date +%s) - t0)) s)"
        else
            sed 's/^/    /' "$tmp/$name.log"
            bad "$name ran"
            continue
        fi
        [ "$impl" = pocl-cpu ] && continue
        if "$TENSOR_DIFF" "$tmp/$ref/model.safetensors" "$tmp/$name/model.safetensors" \
            "$WEIGHT_TOL" >"$tmp/diff" 2>&1; then
            ok "$name weights: $(tail -1 "$tmp/diff")"
        else
            sed 's/^/    /' "$tmp/diff"
            bad "$name weights"
        fi
        if within_one_point "$(table "$tmp/$ref.log")" "$(table "$tmp/$name.log")" $n; then
            ok "$name table within one point of $ref"
        else
            bad "$name table: $(table "$tmp/$name.log"), $ref: $(table "$tmp/$ref.log")"
        fi
    done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
