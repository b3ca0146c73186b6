#!/usr/bin/python3
"""The public AutoAttack, standard version, on a ramp-cl checkpoint and Fashion-MNIST: the
reference for `ramp-cl eval --protocol standard` (RESULTS.md, BENCHMARKS.md).

The reference is pyautoattack 0.2.0 from PyPI, a packaging of fra31/auto-attack (autoattack/:
autopgd_base.py, fab_base.py, fab_pt.py, fab_projections.py, square.py with the l_1 variants;
autoattack.py's set_version('standard')). It needs PyTorch and NumPy; install it beside the
system's torch without touching the system python:

    /usr/bin/python3 -m venv --system-site-packages /tmp/aa
    /tmp/aa/bin/pip install --no-deps pyautoattack==0.2.0
    /tmp/aa/bin/python tools/autoattack_reference.py runs/quickstart/model.safetensors \\
        --n 1000 --out ref.json --compare runs/quickstart/eval-standard.json

Per norm (l_inf 0.1, l_2 1.5, l_1 10 unless --eps says otherwise) it runs AutoAttack's standard
version on the first --n test points (batches of --batch, torch.set_num_threads(--threads)) and
prints the robust accuracy, the points each attack broke and the seconds; then the union. With
--compare, a ramp-cl eval-standard.json of the same checkpoint and points: per norm, the points
that only one of the two left robust. --out writes all of it, with the per-point outcomes, as
JSON.
"""

import argparse
import gzip
import importlib.util
import json
import logging
import os
import struct
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "make_fixtures", os.path.join(HERE, "..", "tests", "fixtures", "make_fixtures.py"))
mf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mf)

NORMS = {"linf": "Linf", "l2": "L2", "l1": "L1"}


def load_model(path):
    tensors, meta = mf.read_safetensors(path)
    model = mf.build_model(meta["arch"], int(meta["in_channels"]), int(meta["num_classes"]),
                           int(meta["width"]), int(meta["input_size"]), meta.get("activation"))
    state = {k: v for k, v in tensors.items() if not k.startswith("train.")}
    model.load_state_dict(state)
    return model.eval()


def idx_file(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    dims = [struct.unpack(">I", raw[4 + 4 * i:8 + 4 * i])[0] for i in range(magic & 0xff)]
    return np.frombuffer(raw[4 + 4 * len(dims):], dtype=np.uint8).reshape(dims)


def fashion_mnist_test(root, n):
    x = idx_file(os.path.join(root, "t10k-images-idx3-ubyte.gz"))[:n]
    y = idx_file(os.path.join(root, "t10k-labels-idx1-ubyte.gz"))[:n]
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(y.astype(np.int64))


def bits(mask):
    return "".join("1" if v else "0" for v in mask.tolist())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--norms", default="linf,l2,l1")
    ap.add_argument("--eps", default="0.1,1.5,10")
    ap.add_argument("--batch", type=int, default=250, help="AutoAttack's bs (its default 250)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    ap.add_argument("--compare", help="ramp-cl's eval-standard.json of the same checkpoint")
    args = ap.parse_args(argv)

    from pyautoattack import AutoAttack

    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint)
    x, y = fashion_mnist_test(args.data, args.n)
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    norms = args.norms.split(",")
    eps = [float(e) for e in args.eps.split(",")]
    logging.basicConfig(level=logging.WARNING)
    report = {"reference": "pyautoattack 0.2.0 (fra31/auto-attack), version standard",
              "checkpoint": args.checkpoint, "n": args.n, "seed": args.seed,
              "threads": args.threads, "clean_acc": clean.float().mean().item(), "norms": [],
              "points": {"clean": bits(clean)}}
    union = clean.clone()
    print("clean %.2f%% (%d points)" % (100 * clean.float().mean().item(), args.n))
    for name, e in zip(norms, eps):
        aa = AutoAttack(model, norm=NORMS[name], eps=e, version="standard", seed=args.seed)
        robust = clean.clone()
        attacks = {}
        for attack in aa.attacks_to_run:  # one at a time on the points still robust, as AA does
            idx = robust.nonzero().flatten()
            t0 = time.time()
            broken = 0
            if len(idx):
                aa.attacks_to_run = [attack]
                adv, _ = aa.run_standard_evaluation(x[idx], y[idx], batch_size=args.batch)
                with torch.no_grad():
                    wrong = model(adv).argmax(1) != y[idx]
                robust[idx[wrong]] = False
                broken = int(wrong.sum())
            attacks[attack] = {"broken": broken, "seconds": round(time.time() - t0, 3)}
        union &= robust
        acc = robust.float().mean().item()
        secs = sum(a["seconds"] for a in attacks.values())
        print("%s %g: %.2f%%  %s  (%.1f s)" % (name, e, 100 * acc, ", ".join(
            "%s %d" % (k, v["broken"]) for k, v in attacks.items()), secs))
        report["norms"].append({"norm": name, "eps": e, "robust_acc": acc, "seconds": secs,
                                "attacks": attacks})
        report["points"][name] = bits(robust)
    report["union_acc"] = union.float().mean().item()
    print("union %.2f%%" % (100 * report["union_acc"]))
    if args.compare:
        with open(args.compare) as f:
            ours = json.load(f)
        print("against %s (%s protocol): per norm, points robust only for" %
              (args.compare, ours["protocol"]))
        for name in norms:
            a, b = report["points"][name], ours["points"][name][:args.n]
            only_ref = sum(1 for p, q in zip(a, b) if p == "1" and q == "0")
            only_ours = sum(1 for p, q in zip(a, b) if p == "0" and q == "1")
            print("  %s: the reference %d, ramp-cl %d" % (name, only_ref, only_ours))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
