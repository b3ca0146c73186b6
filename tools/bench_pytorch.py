#!/usr/bin/python3
"""PyTorch baseline for ramp-cl's benchmark: the same models and workloads, timed in PyTorch.

Needs PyTorch (Debian: apt-get install python3-torch; run with /usr/bin/python3). The models are
the reference definitions in tests/fixtures/make_fixtures.py.

Workloads, per model (random inputs in [0,1], random labels, mean cross-entropy):
  train    model.train(); forward, cross-entropy, backward, SGD step (lr 0.01, momentum 0.9,
           weight_decay 5e-4)
  forward  model.eval(); forward only, no autograd
  attack   model.eval(); forward + gradient w.r.t. the input only (one APGD/PGD step's cost)

Models: small-cnn (1x28x28, width 32) and preact-resnet18 (3x32x32, width 64, softplus) by
default; --model also the WideResNets of ramp-cl bench (wrn-28-10, wrn-34-10, wrn-34-20,
wrn-70-16: RobustBench's WideResNet, ReLU; dm-wrn-28-10, dm-wrn-34-20, dm-wrn-70-16: DeepMind's,
SiLU, mean 0 and std 1), or all.

GFLOP/s is "effective": an analytic count of the convolution and linear layers only (BN,
activations, pooling, loss and the optimiser are not counted), divided by the measured time.
  Per GEMM-like layer, FLOPs = 2*M*N*K:
    conv:   2 * batch * C_out * H_out * W_out * (C_in * kh * kw)
    linear: 2 * batch * out_features * in_features
  F = sum over layers (one forward pass)
  forward = F;  attack = 2F (forward + input gradient);
  train   = 3F (forward + input gradient + weight gradient; the first layer's unneeded input
               gradient is counted too, as is usual)
"""

import argparse
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from convert_checkpoint import reference_models  # noqa: E402 (beside this script)

mf = reference_models()

MODELS = {
    # name: (arch, activation, width, in_channels, num_classes, input_size, depth), as ramp-cl bench
    "small-cnn": ("small-cnn", "relu", 32, 1, 10, 28, 0),
    "preact-resnet18": ("preact-resnet18", "softplus", 64, 3, 10, 32, 0),
    "wrn-28-10": ("wrn", "relu", 10, 3, 10, 32, 28),
    "wrn-34-10": ("wrn", "relu", 10, 3, 10, 32, 34),
    "wrn-34-20": ("wrn", "relu", 20, 3, 10, 32, 34),
    "wrn-70-16": ("wrn", "relu", 16, 3, 10, 32, 70),
    "dm-wrn-28-10": ("dm-wrn", "silu", 10, 3, 10, 32, 28),
    "dm-wrn-34-20": ("dm-wrn", "silu", 20, 3, 10, 32, 34),
    "dm-wrn-70-16": ("dm-wrn", "silu", 16, 3, 10, 32, 70),
}
DEFAULT_MODELS = ("small-cnn", "preact-resnet18")  # as ramp-cl bench without --model


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def torch_setup(threads, device_name):
    """Threads and device for a benchmark: (device, sync, description); sync waits for a GPU."""
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    if device.type == "cuda":
        return device, torch.cuda.synchronize, torch.cuda.get_device_name(device)
    return device, lambda: None, "cpu"


def print_machine(title, threads, dev_desc):
    """The header every benchmark prints: what ran, on which CPU, with which torch."""
    print(title)
    print("CPU: %s (%d logical CPUs)" % (cpu_model(), os.cpu_count() or 0))
    print("torch %s, threads %d (torch.get_num_threads() = %d), device %s" %
          (torch.__version__, threads, torch.get_num_threads(), dev_desc))


def forward_flops(model, x):
    """Analytic F = sum of 2*M*N*K over conv/linear layers, from the shapes of one forward."""
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            k = (mod.in_channels // mod.groups) * kh * kw
            total[0] += 2 * out.numel() * k          # out.numel() = batch*C_out*H_out*W_out
        elif isinstance(mod, nn.Linear):
            total[0] += 2 * out.numel() * mod.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return total[0]


def bench(fn, warmup, iters, sync):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def run_model(name, args, device, sync):
    arch, act, width, in_ch, classes, size, depth = MODELS[name]
    if args.width:
        width = args.width
    torch.manual_seed(0)
    model = mf.build_model(arch, in_ch, classes, width, size, act, depth).to(device)
    x = torch.rand(args.batch, in_ch, size, size, device=device)
    y = torch.randint(classes, (args.batch,), device=device)
    nparam = sum(p.numel() for p in model.parameters())
    flops = forward_flops(model, x)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    def forward_step():
        model.eval()
        with torch.no_grad():
            model(x)

    def attack_step():
        model.eval()
        xa = x.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(xa), y)
        torch.autograd.grad(loss, xa)

    print("%s: %s, width %d, input %dx%dx%d, batch %d, %d parameters, F = %.3f GFLOP "
          "(%.1f MFLOP/image)" % (name, act, width, in_ch, size, size, args.batch, nparam,
                                  flops / 1e9, flops / args.batch / 1e6))
    print("  %-8s %10s %10s %10s %12s %10s" %
          ("workload", "ms/step", "min ms", "max ms", "images/s", "GFLOP/s"))
    results = []
    for wl, fn, mult in (("train", train_step, 3), ("forward", forward_step, 1),
                         ("attack", attack_step, 2)):
        if args.workload and wl not in args.workload:
            continue
        if wl == "attack":
            for p in model.parameters():      # input gradient only: no weight gradients
                p.requires_grad_(False)
        times = bench(fn, args.warmup, args.iters, sync)
        for p in model.parameters():
            p.requires_grad_(True)
        med = statistics.median(times)
        print("  %-8s %10.2f %10.2f %10.2f %12.1f %10.2f" %
              (wl, med * 1e3, min(times) * 1e3, max(times) * 1e3, args.batch / med,
               mult * flops / med / 1e9))
        results.append((name, wl, med))
    sys.stdout.flush()
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["all"] + list(MODELS),
                    help="one model, or all (default: %s)" % " and ".join(DEFAULT_MODELS))
    ap.add_argument("--workload", action="append", choices=["train", "forward", "attack"],
                    help="run only this workload (repeatable; default all three)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--iters", type=int, default=10, help="timed steps per workload")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per workload")
    ap.add_argument("--width", type=int, default=0, help="override the model's base width")
    ap.add_argument("--device", default="cpu", help="torch device (default cpu)")
    args = ap.parse_args()
    if args.iters < 1 or args.batch < 1 or args.threads < 1 or args.warmup < 0:
        ap.error("--iters, --batch and --threads must be >= 1, --warmup >= 0")

    device, sync, dev_desc = torch_setup(args.threads, args.device)
    print_machine("PyTorch baseline for ramp-cl's benchmark", args.threads, dev_desc)
    print("batch %d, warmup %d, iters %d; ms/step = median; GFLOP/s = effective, from the "
          "analytic conv+linear count (forward F, attack 2F, train 3F)" %
          (args.batch, args.warmup, args.iters))
    names = (list(MODELS) if args.model == "all" else [args.model] if args.model
             else DEFAULT_MODELS)
    for n in names:
        run_model(n, args, device, sync)
    return 0


if __name__ == "__main__":
    sys.exit(main())
