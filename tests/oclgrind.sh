#!/bin/sh
# Runs the kernel-level tests under Oclgrind's checkers (out-of-bounds accesses, data races,
# uses of uninitialised values, OpenCL API errors) on both device classes, and a two-batch RAMP
# run of the ramp-cl binary that must end where the same run on PoCL does; fails on any Oclgrind
# report, failing test or disagreement. For CI: not in
# `make check` (an interpreter: minutes, not seconds).
#   tests/oclgrind.sh [cpu|gpu ...]    (from the build tree; default both classes)
# It needs the test programs built (make check, or make check TESTS= to build without running),
# oclgrind (Debian package oclgrind; written against 21.10) and a C compiler for
# tests/oclgrind-shim.c, which is preloaded in front of Oclgrind's runtime to keep its
# uninitialised-value shadow right (see there). RAMP_CL and RAMP_CL_SRCDIR as for tests/cli.sh.
#
# Oclgrind is an interpreter with a 128 MiB device: only the small cases run. Under the checkers
# on a loaded 2-core machine the GPU class took 86 s (layers), 211 s (attack ops), 157 s (RAMP)
# and the CPU class under a minute in all (its kernels run a plane per work-item, and Oclgrind
# pays per work-item):
#   layers:     the convolutions through im2col and each GEMM path (conv1x1_stride2_shortcut) and
#               the implicit-GEMM fused blocks (fused_block_*), batch norm, activations, pooling,
#               residual adds, linear and the loss; the larger convolutions (conv3x3_*,
#               conv5x5_*: a finite difference per coordinate) are left out, their kernels being
#               the same.
#   attack ops: all but the l1 projections on d = 784 and 3072 (l1_project_random,
#               l1_project_ties: the same kernels as l1_project_inside_unchanged and
#               l1_project_nearest_small_d).
#   GEMM:       own_matches_host (every own-GEMM kernel but the split reduction) and
#               own_k_split_matches_host (the split and gemm_reduce), once: the tests pick the
#               implementation themselves, whatever the class.
#   RAMP:       ramp-cl trains RAMP with gradient projection (width-1 small-cnn, steps 1) for two
#               batches of 2 images on a generated MNIST-format set of 4 images, and its clean accuracy.
# Oclgrind 21.10 runs optimised code (kernels must not give LLVM a % beside the / of the same
# operands: the freeze it then emits stops Oclgrind with "Unsupported instruction"); at -O0
# (-cl-opt-disable) its uninitialised-value tracking is wrong for 16-wide vector swizzles.
set -u
RAMP_CL=${RAMP_CL:-./ramp-cl}
srcdir=${RAMP_CL_SRCDIR:-$(dirname "$0")/..}
build=$(dirname "$RAMP_CL")
classes=${*:-cpu gpu}

command -v oclgrind >/dev/null 2>&1 || { echo "oclgrind.sh: oclgrind is not installed" >&2; exit 77; }
for p in check_layers check_attack_ops check_gemm tensor_diff; do
    [ -x "$build/tests/$p" ] ||
        { echo "oclgrind.sh: $build/tests/$p missing: run make check TESTS= first" >&2; exit 1; }
done
[ -x "$RAMP_CL" ] || { echo "oclgrind.sh: $RAMP_CL missing: run make first" >&2; exit 1; }

tmp=$(mktemp -d "${RAMP_CL_TEST_TMP:-${TMPDIR:-/tmp}}/oclgrind-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
${CC:-cc} -shared -fPIC -O2 -o "$tmp/shim.so" "$srcdir/tests/oclgrind-shim.c" -ldl ||
    { echo "oclgrind.sh: cannot build tests/oclgrind-shim.c" >&2; exit 1; }

# MNIST-format data: 4 images (bytes of a fixture), labels 0-3, as training and test set.
mkdir -p "$tmp/data"
for split in train t10k; do
    { printf '\0\0\10\3\0\0\0\4\0\0\0\34\0\0\0\34'
      head -c 3136 "$srcdir/tests/fixtures/small-cnn.safetensors"; } >"$tmp/data/$split-images-idx3-ubyte"
    printf '\0\0\10\1\0\0\0\4\0\1\2\3' >"$tmp/data/$split-labels-idx1-ubyte"
done
cat >"$tmp/ramp.yaml" <<EOF
model: {arch: small-cnn, width: 1}
data: {dataset: mnist, path: $tmp/data, batch_size: 2, eval_batch_size: 4}
method: ramp
threat_models:
  - {norm: linf, eps: 0.1, steps: 1}
  - {norm: l2, eps: 1.5, steps: 1}
  - {norm: l1, eps: 10, steps: 1}
ramp: {pair: [linf, l1], gp: true}
schedule: {name: constant, epochs: 1}
eval: {every: 0, final_protocol: none}
output: {dir: $tmp/run}
EOF

LAYERS="conv1x1_stride2_shortcut batchnorm_train batchnorm_eval batchnorm_running_stats relu
    softplus softplus_above_threshold global_avg_pool residual_add accumulate_adds linear
    cross_entropy fused_block_stride2_odd fused_block_stride1_ragged fused_block_wide
    fused_block_one_channel"
ATTACK_OPS="linf_step_and_momentum l2_step_and_momentum l2_zero_gradient_no_nan topk_threshold
    l1_step l1_project_inside_unchanged l1_project_box_only l1_project_nearest_small_d l0_count
    deterministic scratch_bounds"
GEMM="own_matches_host own_k_split_matches_host"

# Every Oclgrind report names its kernel and work-item, or is an API error or a fatal error.
REPORT='^	Kernel: |Oclgrind - OpenCL runtime error|OCLGRIND FATAL ERROR|errors generated'
pass=0
fail=0
start=$(date +%s)
# run NAME CLASS TESTS COMMAND...: under Oclgrind, the shim in front of its runtime; TESTS the
# Check tests to run ("" all). Check runs them in its own process (CK_FORK=no), so every report
# reaches this log. No program cache: every program is compiled by Oclgrind in this run.
run() {
    name=$1 class=$2 tests=$3
    shift 3
    log="$tmp/$name-$class.log" t0=$(date +%s)
    RAMP_CL_PATH=$class RAMP_CL_TESTS=$tests CK_FORK=no RAMP_CL_NO_CACHE=1 \
        oclgrind --data-races --uninitialized --check-api \
        sh -c 'LD_PRELOAD="$0${LD_PRELOAD:+:$LD_PRELOAD}" exec "$@"' "$tmp/shim.so" "$@" \
        >"$log" 2>&1
    rc=$?
    reports=$(grep -c -E "$REPORT" "$log")
    echo "oclgrind: $name, $class class: exit $rc, $reports reports, $(($(date +%s) - t0)) s"
    if [ "$rc" -eq 0 ] && [ "$reports" -eq 0 ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        grep -E -A 3 ":[FE]:|$REPORT" "$log" | head -n 60 | sed 's/^/    /'
    fi
}

# The RAMP run on PoCL's CPU class: the reference each Oclgrind run must agree with (every weight
# within 1e-3, as tests/implementations.sh, and the same clean accuracy). Oclgrind runs only this
# small a run in minutes, so its whole-run agreement is checked here, not in implementations.sh.
VENDORS=/etc/OpenCL/vendors
POCL_ICD=
[ -f $VENDORS/pocl.icd ] && POCL_ICD=$VENDORS/pocl.icd
sed "s|dir: $tmp/run|dir: $tmp/ref|" "$tmp/ramp.yaml" >"$tmp/ref.yaml"
env ${POCL_ICD:+OCL_ICD_VENDORS=$POCL_ICD} RAMP_CL_PATH=cpu "$RAMP_CL" "$tmp/ref.yaml" \
    >"$tmp/ref.log" 2>&1 || { cat "$tmp/ref.log"; echo "oclgrind.sh: the PoCL run failed" >&2; exit 1; }
accuracy() { grep -o 'clean test accuracy [0-9.]*%' "$1"; }

# agree CLASS: the Oclgrind run of CLASS ended where the reference did.
agree() {
    if "$build/tests/tensor_diff" "$tmp/ref/model.safetensors" "$tmp/run/model.safetensors" 1e-3 \
        >"$tmp/diff" 2>&1 && [ "$(accuracy "$tmp/ref.log")" = "$(accuracy "$tmp/ramp-$1.log")" ]; then
        pass=$((pass + 1))
        echo "oclgrind: ramp, $1 class agrees with PoCL: $(tail -1 "$tmp/diff"), $(accuracy "$tmp/ref.log")"
    else
        fail=$((fail + 1))
        echo "oclgrind: ramp, $1 class differs from PoCL: $(tail -1 "$tmp/diff"); PoCL" \
            "$(accuracy "$tmp/ref.log"), Oclgrind $(accuracy "$tmp/ramp-$1.log")"
    fi
}

for class in $classes; do
    case $class in cpu | gpu) ;; *) echo "oclgrind.sh: unknown class $class" >&2; exit 2 ;; esac
    run layers "$class" "$(echo $LAYERS)" "$build/tests/check_layers"
    run attack_ops "$class" "$(echo $ATTACK_OPS)" "$build/tests/check_attack_ops"
    rm -rf "$tmp/run"
    run ramp "$class" "" "$RAMP_CL" "$tmp/ramp.yaml"
    agree "$class"
done
run gemm "${classes%% *}" "$GEMM" "$build/tests/check_gemm"
echo "oclgrind: $(($(date +%s) - start)) s in all"
echo "$pass passed, $fail failed"
if [ $fail -ne 0 ]; then
    trap - EXIT
    echo "oclgrind: logs kept in $tmp"
    exit 1
fi
