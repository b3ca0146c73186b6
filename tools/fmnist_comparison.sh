#!/bin/sh
# The Fashion-MNIST comparison of RESULTS.md: E-AT, MAX and RAMP fine-tuning of the same naturally
# trained small-cnn (runs/natural-fmnist, from configs/natural-fmnist.yaml), one config each
# (configs/fmnist-eat.yaml, configs/fmnist-max.yaml, configs/quickstart.yaml) with only the seed,
# the output directory and the final protocol changed, then a table of the full-protocol results.
#
#   sh tools/fmnist_comparison.sh [--table] [SEEDS...]   (default seeds: 0 1 2; device: $RAMP_DEVICE
#                                                        or 0; methods: $RAMP_METHODS or
#                                                        "eat max ramp"; --table: only the table)
#
# Runs land in runs/comparison/<method>-s<seed>/; a finished run (eval-full.json present) is
# skipped, so the script can be restarted after an interruption.
set -eu
cd "$(dirname "$0")/.."
table_only=
if [ "${1:-}" = --table ]; then table_only=1; shift; fi
seeds=${*:-0 1 2}
device=${RAMP_DEVICE:-0}
bin=${RAMP_CL:-./ramp-cl}    # e.g. a copy of the binary, so a rebuild cannot change it mid-way
out=runs/comparison
mkdir -p "$out/configs"
[ -f runs/natural-fmnist/model.safetensors ] || "$bin" --device "$device" configs/natural-fmnist.yaml

for seed in $seeds; do
    [ -n "$table_only" ] && break
    for method in ${RAMP_METHODS:-eat max ramp}; do
        case $method in
        eat) src=configs/fmnist-eat.yaml ;;
        max) src=configs/fmnist-max.yaml ;;
        ramp) src=configs/quickstart.yaml ;;
        *) echo "RAMP_METHODS: unknown method $method (eat, max, ramp)" >&2; exit 2 ;;
        esac
        run=$out/$method-s$seed
        [ -f "$run/eval-full.json" ] && continue
        cfg=$out/configs/$method-s$seed.yaml
        sed -e "s/^seed: .*/seed: $seed/" -e "s/final_protocol: fast/final_protocol: full/" "$src" >"$cfg"
        printf 'output:\n  dir: %s\n' "$run" >>"$cfg"
        echo "== $method seed $seed: $bin --device $device $cfg"
        "$bin" --device "$device" "$cfg"
    done
done

# One row per finished run and a mean per method: accuracies from eval-full.json, training time from the
# last metrics.jsonl record.
python3 - "$out" $seeds <<'EOF'
import json, os, sys, statistics as st
out, seeds = sys.argv[1], sys.argv[2:]
print("| method | seed | Clean | l_inf | l_2 | l_1 | Union | training s | evaluation s |")
print("|---|---|---|---|---|---|---|---|---|")
for m in ("eat", "max", "ramp"):
    rows = []
    for s in seeds:
        if not os.path.exists(f"{out}/{m}-s{s}/eval-full.json"):
            continue  # not run (yet)
        e = json.load(open(f"{out}/{m}-s{s}/eval-full.json"))
        last = [json.loads(l) for l in open(f"{out}/{m}-s{s}/metrics.jsonl")][-1]
        r = [100 * e["clean_acc"]] + [100 * n["robust_acc"] for n in e["norms"]] + [100 * e["union_acc"]]
        rows.append(r)
        print(f"| {m} | {s} | " + " | ".join(f"{v:.2f}" for v in r)
              + f" | {last['wall_time_s']:.1f} | {e['seconds']:.1f} |")
    if len(rows) > 1:
        mean = [st.mean(c) for c in zip(*rows)]
        sd = [st.stdev(c) for c in zip(*rows)]
        print(f"| {m} | mean ± sd | " + " | ".join(f"{a:.2f} ± {b:.2f}" for a, b in zip(mean, sd)) + " | | |")
EOF
