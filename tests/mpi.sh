#!/bin/sh
# Data parallelism with MPI: tiny runs with 1, 2 and 3 processes (one OpenCL device each; here all
# on device 0) end with the weights of one process at the same global batch, within 1e-4
# relative (tests/tensor_diff). Skipped (77) when ramp-cl is built without MPI or mpirun is
# missing. Open MPI refuses to run as root without --allow-run-as-root, and more processes than
# cores without --oversubscribe: both are given (CI runs as root on 2 cores).
RAMP_CL=${RAMP_CL:-./ramp-cl}
TENSOR_DIFF=${TENSOR_DIFF:-$(dirname "$RAMP_CL")/tests/tensor_diff}
srcdir=${RAMP_CL_SRCDIR:-.}
"$RAMP_CL" --version | grep -q 'with MPI' || { echo "SKIP: ramp-cl built without MPI"; exit 77; }
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
tmp=$(mktemp -d "${RAMP_CL_TEST_TMP:-/tmp}/mpi-XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
MPIRUN="mpirun --allow-run-as-root --oversubscribe"

# config NAME METHOD BATCH SUBSET: one epoch of the tiny config, no robust evaluation.
config() {
    sed -e "s#dir: .*#dir: $tmp/$1#" -e "s/^method: .*/method: $2/" \
        -e "s/batch_size: .*/batch_size: $3/" -e "s/train_subset: .*/train_subset: $4/" \
        -e "s/epochs: .*/epochs: 1/" -e "s/final_protocol: .*/final_protocol: none/" \
        -e '/^ramp:/,/gp: /d' "$srcdir/tests/agree.yaml" >"$tmp/$1.yaml"
}

# same NAME NP METHOD BATCH SUBSET: NP processes against one, after one epoch.
same() {
    name=$1 np=$2
    config "$name-1" "$3" "$4" "$5"
    config "$name-$np" "$3" "$4" "$5"
    if ! "$RAMP_CL" -q "$tmp/$name-1.yaml" >"$tmp/out" 2>&1 ||
        ! $MPIRUN -np "$np" "$RAMP_CL" -q "$tmp/$name-$np.yaml" >>"$tmp/out" 2>&1; then
        echo "FAIL: $name: a run failed:"
        sed 's/^/    /' "$tmp/out"
        fail=$((fail + 1))
    elif "$TENSOR_DIFF" "$tmp/$name-1/model.safetensors" "$tmp/$name-$np/model.safetensors" \
        1e-4 >"$tmp/diff"; then
        echo "PASS: $name: $(tail -1 "$tmp/diff")"
        pass=$((pass + 1))
    else
        echo "FAIL: $name:"
        sed 's/^/    /' "$tmp/diff"
        fail=$((fail + 1))
    fi
}

# batch 63 splits 31 + 32 over 2 processes, 64 splits 21 + 21 + 22 over 3
same natural-np2 2 natural 63 126
same natural-np3 3 natural 64 128
same eat-np2 2 eat 63 126
same max-np2 2 max 63 126

# A method that is not data-parallel yet is refused with one line, on every rank.
config ramp-np2 ramp 64 128
sed -i 's/^method: ramp/method: ramp\nramp: {pair: [linf, l1]}/' "$tmp/ramp-np2.yaml"
if ! $MPIRUN -np 2 "$RAMP_CL" -q "$tmp/ramp-np2.yaml" >"$tmp/out" 2>&1 &&
    grep -q 'rank [0-9] .*method ramp does not run across processes yet' "$tmp/out"; then
    echo "PASS: ramp-np2 refused"
    pass=$((pass + 1))
else
    echo "FAIL: ramp-np2 refused:"
    sed 's/^/    /' "$tmp/out"
    fail=$((fail + 1))
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
