#!/usr/bin/python3
"""PyTorch baseline for ramp-cl's RAMP training step: one RAMP batch update, timed in PyTorch.

Needs PyTorch (Debian: apt-get install python3-torch; run with /usr/bin/python3). The models are
the reference definitions in tests/fixtures/make_fixtures.py, and the attack is `apgd_train` of
tools/bench_attack_pytorch.py (the faithful RAMP/E-AT re-implementation); both are imported, not
copied.

One RAMP batch (RAMP's RAMP.py with flags --kl --max), key
pair (q, r) = (l_inf, l_1):
  * model.eval(); x_q = APGD-CE(l_inf, eps_q, --steps-linf) and x_r = APGD-CE(l_1, eps_r,
    --steps-l1), training mode (no random start, no restarts, is_train=True); the model's
    parameters keep requires_grad=True during the attacks, as in RAMP.py (only the input gradient
    is asked for);
  * MAX selection per sample: x_best = x_r where loss_best_r >= loss_best_q (ties to r), else x_q,
    on the eval-mode attack losses (not recomputed);
  * model.train(); three separate train-mode forwards z_r = f(x_r), z_q = f(x_q), z_b = f(x_best);
  * mask = (argmax z_q == y), detached;
    loss = CE(z_b, y) + lambda * KLDivLoss(reduction='sum')(log_softmax(z_r[mask] + 1e-12),
           softmax(z_q[mask])) / |mask|   (the KL term is 0 when the mask is empty);
  * backward, SGD step (lr 0.05, momentum 0.9, weight_decay 5e-4 on every parameter, one group,
    dampening 0, nesterov off).
With gradient projection (--gp, the default; --no-gp turns it off), each batch also does one
natural training step (model_nat.train(), clean forward, CE, backward, SGD step with its own
optimizer of the same settings) on a separate copy of the model: that is the per-batch cost of
GP's once-per-epoch natural epoch (RAMP.py --gp, `train_clean`). The once-per-epoch merge (`gp()`:
deep copy of theta_old, per-tensor deltas, cosine similarities, the merged update) is O(#params)
per EPOCH, negligible per batch, and is left out of the timing.

Benchmark: random inputs in [0,1] with random labels, --batch (default 128); small-cnn (1x28x28,
width 32, Fashion-MNIST-shaped) with eps l_inf 0.1, l_1 10, or preact-resnet18 (3x32x32, width 64,
softplus) with eps l_inf 8/255, l_1 12; lambda 1.5. --warmup (default 1) untimed batches, then
--batches (default 5) timed batches, each on a fresh random batch (generated outside the timing).
Reported: median seconds per batch, images/s = batch / median, and the median of each phase.
"""

import argparse
import copy
import importlib.util
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "bench_attack_pytorch", os.path.join(HERE, "bench_attack_pytorch.py"))
ba = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ba)
mf = ba.mf                     # tests/fixtures/make_fixtures.py, as loaded by bench_attack_pytorch
apgd_train = ba.apgd_train

MODELS = ba.MODELS             # name -> (arch, activation, width, in_channels, classes, size, depth)
EPS = ba.EPS                   # name -> norm -> radius (the same as `ramp-cl bench`)

PHASES = ("attack_linf", "attack_l1", "ramp_update", "nat_step")


def make_sgd(model, lr):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4,
                           dampening=0, nesterov=False)


def ramp_batch(model, opt, x, y, args, eps_q, eps_r, sync, times, stats):
    """One RAMP update (attacks + KL/MAX loss + SGD step); phase times are added to `times`."""
    # ---- attacks, eval mode (BN on running statistics, not updated)
    model.eval()
    t0 = time.perf_counter()
    x_q, _, loss_q, _ = apgd_train(model, x, y, "Linf", eps_q, args.steps_linf, is_train=True)
    sync()
    t1 = time.perf_counter()
    x_r, _, loss_r, _ = apgd_train(model, x, y, "L1", eps_r, args.steps_l1, is_train=True)
    sync()
    t2 = time.perf_counter()

    # ---- MAX selection: argmax over [loss_r, loss_q] (first maximum on ties -> r)
    pick = torch.stack((loss_r, loss_q), 0).argmax(0)                  # 0 -> r, 1 -> q
    sel_r = (pick == 0).view(-1, *([1] * (x.dim() - 1)))
    x_best = torch.where(sel_r, x_r, x_q).detach()

    # ---- update, train mode: three separate forwards
    model.train()
    z_r = model(x_r.detach())
    z_q = model(x_q.detach())
    z_b = model(x_best)
    mask = (z_q.detach().argmax(1) == y)
    n_mask = int(mask.sum())
    loss_max = F.cross_entropy(z_b, y)
    if n_mask > 0:
        kl = nn.KLDivLoss(reduction="sum")(F.log_softmax(z_r[mask] + 1e-12, dim=1),
                                           F.softmax(z_q[mask], dim=1)) / n_mask
    else:
        kl = torch.zeros((), device=x.device)
    loss = loss_max + args.lbd * kl
    opt.zero_grad()
    loss.backward()
    opt.step()
    sync()
    t3 = time.perf_counter()

    times["attack_linf"] = t1 - t0
    times["attack_l1"] = t2 - t1
    times["ramp_update"] = t3 - t2
    stats.append((loss.item(), loss_max.item(), kl.item(), n_mask,
                  int(sel_r.sum()), bool(torch.isfinite(loss))))


def nat_step(model_nat, opt_nat, x, y, sync, times):
    """GP's natural training step: clean CE on the separate model copy."""
    t0 = time.perf_counter()
    model_nat.train()
    loss = F.cross_entropy(model_nat(x), y)
    opt_nat.zero_grad()
    loss.backward()
    opt_nat.step()
    sync()
    times["nat_step"] = time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=list(MODELS), default="small-cnn")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps-linf", type=int, default=10,
                    help="APGD iterations for the l_inf (q) attack (default 10)")
    ap.add_argument("--steps-l1", type=int, default=10,
                    help="APGD iterations for the l_1 (r) attack (default 10)")
    ap.add_argument("--lbd", type=float, default=1.5, help="lambda of the KL term (default 1.5)")
    ap.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (default 0.05)")
    ap.add_argument("--gp", dest="gp", action="store_true", default=True,
                    help="gradient projection: add GP's natural step per batch (default)")
    ap.add_argument("--no-gp", dest="gp", action="store_false", help="RAMP without GP")
    ap.add_argument("--warmup", type=int, default=1, help="untimed batches (default 1)")
    ap.add_argument("--batches", type=int, default=5, help="timed batches (default 5)")
    ap.add_argument("--device", default="cpu", help="torch device (default cpu)")
    args = ap.parse_args()
    if (args.batch < 1 or args.threads < 1 or args.batches < 1 or args.warmup < 0
            or args.steps_linf < 1 or args.steps_l1 < 1):
        ap.error("--batch, --threads, --batches, --steps-* must be >= 1, --warmup >= 0")

    device, sync, dev_desc = ba.torch_setup(args.threads, args.device)

    arch, act, width, in_ch, classes, size, depth = MODELS[args.model]
    eps_q, eps_r = EPS[args.model]["Linf"], EPS[args.model]["L1"]
    torch.manual_seed(0)
    model = mf.build_model(arch, in_ch, classes, width, size, act, depth).to(device)
    opt = make_sgd(model, args.lr)
    if args.gp:
        model_nat = copy.deepcopy(model)
        opt_nat = make_sgd(model_nat, args.lr)
    nparam = sum(p.numel() for p in model.parameters())

    ba.print_machine("PyTorch baseline for ramp-cl's RAMP training step (KL + MAX%s)"
                     % (" + GP natural step" if args.gp else ", no GP"), args.threads, dev_desc)
    print("%s: %s, width %d, input %dx%dx%d, batch %d, %d parameters" %
          (args.model, act, width, in_ch, size, size, args.batch, nparam))
    print("(q, r) = (Linf, L1): eps %.6g / %.6g, APGD-CE training mode %d / %d iterations; "
          "lambda %g; SGD lr %g, momentum 0.9, wd 5e-4" %
          (eps_q, eps_r, args.steps_linf, args.steps_l1, args.lbd, args.lr))
    if args.gp:
        print("GP: one natural SGD step per batch on a separate model copy (own optimizer) is "
              "timed; the once-per-epoch GP merge (O(#params) per epoch) is negligible and left "
              "out")
    print("%d warm-up + %d timed batches (median)" % (args.warmup, args.batches))
    sys.stdout.flush()

    gen = torch.Generator().manual_seed(1)
    per_batch, phases, stats = [], {p: [] for p in PHASES}, []
    for b in range(args.warmup + args.batches):
        x = torch.rand(args.batch, in_ch, size, size, generator=gen).to(device)
        y = torch.randint(classes, (args.batch,), generator=gen).to(device)
        sync()
        times = {"nat_step": 0.0}
        t0 = time.perf_counter()
        if args.gp:
            nat_step(model_nat, opt_nat, x, y, sync, times)
        ramp_batch(model, opt, x, y, args, eps_q, eps_r, sync, times, stats)
        dt = time.perf_counter() - t0
        if b >= args.warmup:
            per_batch.append(dt)
            for p in PHASES:
                phases[p].append(times[p])

    med = statistics.median(per_batch)
    print("per batch: median %.3f s (min %.3f, max %.3f) -> %.1f images/s" %
          (med, min(per_batch), max(per_batch), args.batch / med))
    print("phase medians: " + ", ".join(
        "%s %.3f s" % (p, statistics.median(phases[p])) for p in PHASES
        if args.gp or p != "nat_step"))
    timed = stats[args.warmup:]
    ok = all(s[5] for s in stats)
    print("timed batches: loss %s; CE(z_b) %s; KL %s; |mask| %s; x_best from r %s of %d; "
          "all losses finite: %s" %
          (" ".join("%.4f" % s[0] for s in timed), " ".join("%.4f" % s[1] for s in timed),
           " ".join("%.4f" % s[2] for s in timed), " ".join(str(s[3]) for s in timed),
           " ".join(str(s[4]) for s in timed), args.batch, "OK" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
