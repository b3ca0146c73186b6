#!/usr/bin/python3
"""PyTorch baseline for ramp-cl's attack benchmark: APGD in training mode, timed in PyTorch.

Needs PyTorch (Debian: apt-get install python3-torch; run with /usr/bin/python3). The models are
the reference definitions in tests/fixtures/make_fixtures.py, loaded the same way as in
tools/bench_pytorch.py.

The attack is `apgd_train` of RAMP/E-AT (autopgd_train.py in both repositories), written out
here, in the setting RAMP trains with:
  * no random start (x_adv = clamp(x, 0, 1)), no restarts, per-sample cross-entropy, the attack
    ascends the sum of the per-sample losses;
  * model.eval() (BatchNorm on running statistics, which are not updated);
  * l_inf / l_2: step size 2*eps, momentum 0.75 (1.0 at i = 0), checkpoints every k iterations with
    k = max(int(0.22N),1), then k <- max(k - max(int(0.03N),1), max(int(0.06N),1)); at a
    checkpoint, halve the step and restart from the best point where the loss oscillated
    (#increases over the last k steps <= 0.75k, the first checkpoint reading the zero row
    loss_steps[-1]) or where it did not improve since the last checkpoint that did not halve;
    l_2 uses the radial rescale followed by the [0,1] clamp (approximate projection, as the code);
  * l_1: step size eps, no momentum, sparse step along sign(g) on the coordinates with
    |g| >= the (1-topk)-quantile of |g| (topk 0.05 at the start, is_train=True), each moved by
    eta/|S|, then the exact projection onto {||delta||_1 <= eps} n [0,1]^d (L1_projection);
    every k = max(int(0.04N),1) iterations: sparsity adaptation (topk <- ||x_best-x||_0/d/1.5,
    eta <- eps where the sparsity fell by more than 5% (and restart from the best point there),
    eta/1.5 elsewhere, clamped to [eps/10, eps]);
  * no backward at the last iteration (the stale gradient is only copied into grad_best);
  * returns (x_best, acc, loss_best, x_best_adv), as E-AT's apgd_train (RAMP's extra `prob`, the
    true-class probability at the last iterate, is unused by training and not computed here).

Benchmark: per model and norm, a batch of random inputs in [0,1] with random labels (default 128),
N iterations (default 10), one untimed warm-up attack and --runs timed attacks (median reported):
seconds per attack and images x iterations per second (= batch*N / seconds; one attack costs N+1
forwards and N input-gradient backwards). The model's parameters have requires_grad off during the
attack (input gradient only), as in bench_pytorch.py's "attack" workload. Radii as in `ramp-cl
bench`: small-cnn (MNIST-like) l_inf 0.1, l_2 1.5, l_1 10; the CIFAR-10 models (preact-resnet18 and
the WideResNets) l_inf 8/255, l_2 0.5, l_1 12. Models: small-cnn and preact-resnet18 by default,
--model one of bench_pytorch.py's, or all.

Checks printed per norm: x_best in the eps-ball (norm of x_best - x) and in the [0,1] box, and
loss_best >= the clean loss (computed separately, eval mode, no autograd), per sample.
"""

import argparse
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F


NORMS = ("Linf", "L2", "L1")


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The reference models (make_fixtures, as mf), the model table and the benchmark header: one copy.
from bench_pytorch import DEFAULT_MODELS, MODELS, mf, print_machine, torch_setup  # noqa: E402

EPS = {  # model -> norm -> radius (the same as `ramp-cl bench`): small-cnn's, else CIFAR-10's
    name: ({"Linf": 0.1, "L2": 1.5, "L1": 10.0} if name == "small-cnn" else
           {"Linf": 8.0 / 255, "L2": 0.5, "L1": 12.0}) for name in MODELS
}


# --------------------------------------------------------------------------------------------
# APGD (training mode).


def _per_sample_view(t, ndims):
    return t.view(-1, *([1] * ndims))


def l2_norm(t):
    """Per-sample l_2 norm, shape [B, 1, ..., 1]."""
    n = t.flatten(1).pow(2).sum(-1).sqrt()
    return _per_sample_view(n, t.dim() - 1)


def l2_ball_box(x, p, eps):
    """Radial rescale of p - x onto the l_2 eps-ball, then clamp to [0,1] (not the exact
    projection onto the intersection; this is what apgd_train does)."""
    delta = p - x
    n = l2_norm(delta)
    return torch.clamp(x + delta / (n + 1e-12) * torch.clamp(n, max=eps), 0.0, 1.0)


def linf_ball_box(x, p, eps):
    return torch.clamp(torch.min(torch.max(p, x - eps), x + eps), 0.0, 1.0)


def l1_projection(x, y, eps):
    """Exact projection of x + y onto {delta : ||delta||_1 <= eps, 0 <= x + delta <= 1}.

    Returns the correction D such that y + D is the projected perturbation (`L1_projection` of
    auto-attack's autopgd_base.py and RAMP's autopgd_train.py). Per sample:
    the projection keeps signs and shrinks each magnitude a_j = |y_j| by r_j = clip(lam, v_j, a_j),
    v_j = how far x_j + y_j sticks out of [0,1]. If box clipping alone satisfies the l_1 constraint
    (sum v + eps - sum a >= 0), r = v; otherwise lam solves sum_j clip(lam, v_j, a_j) = sum a - eps,
    found by a binary search over the 2d sorted breakpoints of that piecewise-linear function."""
    shape = y.shape
    B = shape[0]
    xf = x.reshape(B, -1).float()
    yf = y.reshape(B, -1).float()
    d = xf.shape[1]
    sigma = torch.sign(yf)
    v = torch.clamp(-torch.min(1.0 - xf - yf, xf + yf), min=0.0)      # box violation, >= 0
    a = yf.abs()                                                       # magnitude
    c = eps - a.sum(1)                                                 # [B]
    sum_v = v.sum(1)
    active = (sum_v + c) < 0                                           # l_1 constraint binds

    # Breakpoints of F(lam) = sum_j clip(lam, v_j, a_j): the v_j raise the slope by one, the
    # a_j lower it by one. Sorted ascending, with the slope on the segment after each one.
    bs, order = torch.sort(torch.cat((v, a), 1), dim=1)
    flag = (order < d).to(bs.dtype) * 2.0 - 1.0
    slope = flag.cumsum(1)
    bs_next = torch.cat((bs[:, 1:], torch.zeros(B, 1, dtype=bs.dtype, device=bs.device)), 1)
    s = sum_v.unsqueeze(1) + torch.cumsum((bs_next - bs) * slope, 1)   # s_m = F(bs_{m+1})

    n = 2 * d
    lb = torch.zeros(B, dtype=torch.long, device=bs.device)
    ub = torch.full((B,), n - 1, dtype=torch.long, device=bs.device)
    rows = torch.arange(B, device=bs.device)
    for _ in range(int(math.ceil(math.log2(n)))):
        mid = torch.div(lb + ub, 2, rounding_mode="floor")
        below = (s[rows, mid] + c) < 0
        lb = torch.where(below, mid, lb)
        ub = torch.where(below, ub, mid)
    lam = (-s[rows, lb] - c) / slope[rows, lb + 1] + bs_next[rows, lb]      # [B]
    r_active = torch.min(torch.max(lam.unsqueeze(1), v), a)
    r = torch.where(active.unsqueeze(1), r_active, v)
    return (-sigma * r).view(shape)


def check_oscillation(loss_steps, i, k, thr):
    """#{j in i-k+1..i : loss_steps[j] > loss_steps[j-1]} <= k*thr, per sample. Index -1 wraps to
    the last (still zero) row, as in the published code."""
    t = torch.zeros_like(loss_steps[0])
    for c in range(k):
        t += (loss_steps[i - c] > loss_steps[i - c - 1]).float()
    return (t <= k * thr).float()


def apgd_train(model, x, y, norm, eps, n_iter=10, is_train=True):
    """APGD as RAMP/E-AT's apgd_train (CE loss, no random start). Returns
    (x_best, acc, loss_best, x_best_adv)."""
    assert not model.training
    B = x.shape[0]
    ndims = x.dim() - 1
    dev = x.device

    x_adv = x.clone().clamp(0.0, 1.0)
    x_best = x_adv.clone()
    x_best_adv = x_adv.clone()
    loss_steps = torch.zeros(n_iter, B, device=dev)

    n_fts = math.prod(x.shape[1:])
    if norm in ("Linf", "L2"):
        n_iter_2 = max(int(0.22 * n_iter), 1)
        n_iter_min = max(int(0.06 * n_iter), 1)
        size_decr = max(int(0.03 * n_iter), 1)
        k = n_iter_2
        thr_decr = 0.75
        alpha = 2.0
    elif norm == "L1":
        k = max(int(0.04 * n_iter), 1)
        topk = (0.05 if is_train else 0.2) * torch.ones(B, device=dev)
        sp_old = n_fts * torch.ones_like(topk)
        adasp_redstep = 1.5
        adasp_minstep = 10.0
        alpha = 1.0
    else:
        raise ValueError("unknown norm %r" % norm)
    step_size = alpha * eps * torch.ones(B, *([1] * ndims), device=dev)
    counter3 = 0

    # Iteration 0: the start point.
    x_adv.requires_grad_(True)
    logits = model(x_adv)
    loss_indiv = F.cross_entropy(logits, y, reduction="none")
    grad = torch.autograd.grad(loss_indiv.sum(), [x_adv])[0].detach()
    x_adv = x_adv.detach()
    grad_best = grad.clone()
    acc = logits.detach().argmax(1) == y
    loss_best = loss_indiv.detach().clone()
    loss_best_last_check = loss_best.clone()
    reduced_last_check = torch.ones_like(loss_best)
    rows = torch.arange(B, device=dev)
    x_adv_old = x_adv.clone()

    for i in range(n_iter):
        # ---- step
        with torch.no_grad():
            grad2 = x_adv - x_adv_old
            x_adv_old = x_adv.clone()
            a = 0.75 if i > 0 else 1.0
            if norm == "Linf":
                z = linf_ball_box(x, x_adv + step_size * torch.sign(grad), eps)
                x_new = linf_ball_box(x, x_adv + (z - x_adv) * a + grad2 * (1 - a), eps)
            elif norm == "L2":
                z = l2_ball_box(x, x_adv + step_size * grad / (l2_norm(grad) + 1e-12), eps)
                x_new = l2_ball_box(x, x_adv + (z - x_adv) * a + grad2 * (1 - a), eps)
            else:  # L1: sparse step on the top-|g| coordinates, then the exact projection
                g_sorted = grad.abs().view(B, -1).sort(-1)[0]
                idx = torch.clamp((1.0 - topk) * n_fts, min=0, max=n_fts - 1).long()
                tau = _per_sample_view(g_sorted[rows, idx], ndims)
                s = torch.sign(grad * (grad.abs() >= tau).float())
                nsel = _per_sample_view(s.abs().view(B, -1).sum(-1), ndims)
                delta_u = x_adv + step_size * s / (nsel + 1e-10) - x
                x_new = x + delta_u + l1_projection(x, delta_u, eps)
            x_adv = x_new

        # ---- loss and gradient at the new iterate (no backward at the last iteration)
        x_adv.requires_grad_(True)
        logits = model(x_adv)
        loss_indiv = F.cross_entropy(logits, y, reduction="none")
        if i < n_iter - 1:
            grad = torch.autograd.grad(loss_indiv.sum(), [x_adv])[0].detach()
        x_adv = x_adv.detach()
        loss_indiv = loss_indiv.detach()

        with torch.no_grad():
            pred = logits.detach().argmax(1) == y
            acc = acc & pred
            wrong = _per_sample_view(~pred, ndims)
            x_best_adv = torch.where(wrong, x_adv, x_best_adv)

            # ---- best point and step-size control
            loss_steps[i] = loss_indiv
            better = loss_indiv > loss_best
            bv = _per_sample_view(better, ndims)
            x_best = torch.where(bv, x_adv, x_best)
            grad_best = torch.where(bv, grad, grad_best)
            loss_best = torch.where(better, loss_indiv, loss_best)

            counter3 += 1
            if counter3 == k:
                if norm in ("Linf", "L2"):
                    fl = check_oscillation(loss_steps, i, k, thr_decr)
                    fl_no_impr = (1.0 - reduced_last_check) * \
                        (loss_best_last_check >= loss_best).float()
                    fl = torch.max(fl, fl_no_impr)
                    reduced_last_check = fl.clone()
                    loss_best_last_check = loss_best.clone()
                    fv = _per_sample_view(fl > 0, ndims)
                    step_size = torch.where(fv, step_size / 2.0, step_size)
                    x_adv = torch.where(fv, x_best, x_adv)
                    grad = torch.where(fv, grad_best, grad)
                    counter3 = 0
                    k = max(k - size_decr, n_iter_min)
                else:
                    sp_curr = (x_best - x).view(B, -1).ne(0).float().sum(-1)
                    fl = (sp_curr / sp_old) < 0.95
                    topk = sp_curr / n_fts / 1.5
                    fv = _per_sample_view(fl, ndims)
                    step_size = torch.where(fv, torch.full_like(step_size, alpha * eps),
                                            step_size / adasp_redstep)
                    step_size = step_size.clamp(alpha * eps / adasp_minstep, alpha * eps)
                    sp_old = sp_curr.clone()
                    x_adv = torch.where(fv, x_best, x_adv)
                    grad = torch.where(fv, grad_best, grad)
                    counter3 = 0

    return x_best, acc, loss_best, x_best_adv


# --------------------------------------------------------------------------------------------
# Benchmark.


def perturbation_norm(delta, norm):
    f = delta.flatten(1).double()
    if norm == "Linf":
        return f.abs().max(1)[0]
    if norm == "L2":
        return f.pow(2).sum(1).sqrt()
    return f.abs().sum(1)


def validate(model, x, y, norm, eps, out):
    x_best, acc, loss_best, x_best_adv = out
    with torch.no_grad():
        clean_logits = model(x)
        clean_loss = F.cross_entropy(clean_logits, y, reduction="none")
        best_loss_re = F.cross_entropy(model(x_best), y, reduction="none")
        adv_wrong = (model(x_best_adv).argmax(1) != y)
    clean_acc = (clean_logits.argmax(1) == y).float().mean().item()
    pn = perturbation_norm(x_best - x, norm)
    max_n = pn.max().item()
    # float32 slack: the clips/rescale/projection are exact up to rounding of x + delta
    tol = 1e-6 * max(1.0, eps) if norm == "Linf" else 1e-5 * max(1.0, eps)
    in_ball = max_n <= eps + tol
    lo, hi = x_best.min().item(), x_best.max().item()
    in_box = lo >= 0.0 and hi <= 1.0
    diff = loss_best - clean_loss
    ok_loss = bool((diff >= -1e-6 * (1.0 + clean_loss.abs())).all())
    n_strict = int((diff > 0).sum())
    broken = ~acc
    adv_ok = bool(adv_wrong[broken].all()) if broken.any() else True
    re_err = (best_loss_re - loss_best).abs().max().item()
    print("    check: ||x_best-x|| max %.6g (eps %.6g, mean %.6g) %s; box [%.6g, %.6g] %s; "
          "loss_best >= clean loss %s (%d/%d strictly higher, min diff %.3g); "
          "mean loss clean %.4f -> best %.4f (re-evaluated at x_best: max |diff| %.2g)"
          % (max_n, eps, pn.mean().item(), "OK" if in_ball else "FAIL", lo, hi,
             "OK" if in_box else "FAIL", "OK" if ok_loss else "FAIL", n_strict, len(y),
             diff.min().item(), clean_loss.mean().item(), loss_best.mean().item(), re_err))
    extra = ""
    if norm == "L1":
        nnz = (x_best - x).flatten(1).ne(0).float().sum(1)
        extra = "; ||x_best-x||_0 mean %.1f of %d" % (nnz.mean().item(), x[0].numel())
    print("    accuracy clean %.4f -> robust %.4f; x_best_adv misclassified where acc=0: %s%s"
          % (clean_acc, acc.float().mean().item(), "OK" if adv_ok else "FAIL", extra))
    return in_ball and in_box and ok_loss and adv_ok


def run_model(name, args, device, sync):
    arch, act, width, in_ch, classes, size, depth = MODELS[name]
    torch.manual_seed(0)
    model = mf.build_model(arch, in_ch, classes, width, size, act, depth).to(device)
    model.eval()
    for p in model.parameters():          # input gradient only
        p.requires_grad_(False)
    x = torch.rand(args.batch, in_ch, size, size, device=device)
    y = torch.randint(classes, (args.batch,), device=device)
    nparam = sum(p.numel() for p in model.parameters())
    print("%s: %s, width %d, input %dx%dx%d, batch %d, %d parameters; APGD-CE training mode, "
          "%d iterations, %d warm-up + %d timed runs (median)"
          % (name, act, width, in_ch, size, size, args.batch, nparam, args.iters, args.warmup,
             args.runs))
    print("  %-9s %9s %10s %10s %10s %12s" %
          ("attack", "eps", "s/attack", "min s", "max s", "img*it/s"))
    sys.stdout.flush()
    ok = True
    for norm in NORMS:
        if args.norm and norm not in args.norm:
            continue
        eps = EPS[name][norm]
        out = None
        for _ in range(args.warmup):
            out = apgd_train(model, x, y, norm, eps, args.iters)
        sync()
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            out = apgd_train(model, x, y, norm, eps, args.iters)
            sync()
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print("  apgd-%-4s %9.5g %10.3f %10.3f %10.3f %12.1f" %
              (norm, eps, med, min(times), max(times), args.batch * args.iters / med))
        ok = validate(model, x, y, norm, eps, out) and ok
        sys.stdout.flush()
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["all"] + list(MODELS),
                    help="one model, or all (default: %s)" % " and ".join(DEFAULT_MODELS))
    ap.add_argument("--norm", action="append", choices=list(NORMS),
                    help="run only this norm (repeatable; default all three)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--iters", type=int, default=10, help="APGD iterations N (default 10)")
    ap.add_argument("--runs", type=int, default=3, help="timed attacks per norm (median; "
                    "default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed attacks per norm (default 1)")
    ap.add_argument("--device", default="cpu", help="torch device (default cpu)")
    args = ap.parse_args()
    if args.iters < 1 or args.batch < 1 or args.threads < 1 or args.runs < 1 or args.warmup < 0:
        ap.error("--iters, --batch, --threads and --runs must be >= 1, --warmup >= 0")

    device, sync, dev_desc = torch_setup(args.threads, args.device)
    print_machine("PyTorch baseline for ramp-cl's attack benchmark (APGD, training mode)",
                  args.threads, dev_desc)
    print("s/attack = median wall time of one apgd_train call; img*it/s = batch * iterations / "
          "s/attack")
    names = (list(MODELS) if args.model == "all" else [args.model] if args.model
             else DEFAULT_MODELS)
    ok = True
    for n in names:
        ok = run_model(n, args, device, sync) and ok
    if not ok:
        print("validation FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
