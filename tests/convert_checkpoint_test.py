#!/usr/bin/python3
"""tools/convert_checkpoint.py against PyTorch, as a new user would run it.

For every architecture ramp-cl reads, a PyTorch model with random weights and BatchNorm
statistics is saved the way published checkpoints come (a bare state dict, one wrapped in
{'state_dict': ...}, DataParallel's 'module.' prefix, RobustBench's sub_block1, a
num_batches_tracked of shape [1], none at all), converted without options, and ramp-cl's
eval-mode logits and input gradient of the mean cross-entropy (tests/model_io) compared with
PyTorch's, computed in float64: max |diff| / max |ref| <= 1e-4 for each. The converted file is
exported back and loaded into the PyTorch model with strict=True. Then the conversion's refusals:
options that contradict the tensors, an unknown architecture, a DMWideResNet without its mean and
std.

  convert_checkpoint_test.py [--full-size]

--full-size also converts random WRN-28-10s of both kinds (RobustBench's WideResNet with
sub_block1 and DMWideResNet with Swish) at 32x32: minutes and about 2 GB; not part of make check.
There the ReLU network's input gradient is reported, not required: a float32 run can take the
other side of a ReLU whose input is within rounding of 0 (in this random WRN-28-10, one output of
block2.layer.0.bn1 is 2e-8 against a mean of 0.2), which changes the gradient in that unit's
receptive field (here by 2.6e-4 of the largest value); the logits are required to agree.

Run by make check through tests/convert.sh, which finds a python3 with PyTorch (tests/model_io
is found through RAMP_CL, the sources through RAMP_CL_SRCDIR); exits 77 (skipped) without it.
"""

import copy
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("PyTorch is not installed: skipped")
    sys.exit(77)

SRC = os.environ.get("RAMP_CL_SRCDIR") or os.path.join(os.path.dirname(__file__), "..")
BUILD = os.path.dirname(os.path.abspath(os.environ.get("RAMP_CL", "./ramp-cl")))
CONVERT = os.path.join(SRC, "tools", "convert_checkpoint.py")
MODEL_IO = os.path.join(BUILD, "tests", "model_io")
sys.path.insert(0, os.path.join(SRC, "tests", "fixtures"))
import make_fixtures as mf  # noqa: E402  (after the path)

TOL = 1e-4
CIFAR = (mf.CIFAR10_MEAN, mf.CIFAR10_STD)
failed = []


def check(name, ok, detail=""):
    """One line per check; a failure shows all of detail (the command's output)."""
    lines = detail.strip().splitlines() or [""]
    print("%s: %s%s" % ("PASS" if ok else "FAIL", name, (": " + lines[0]) if lines[0] else ""))
    if not ok:
        failed.append(name)
        for line in lines[1:]:
            print("    " + line)


def randomize(model, seed):
    """Random weights (PyTorch's initialisation, from `seed`) and BatchNorm statistics, as the
    fixtures."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.reset_parameters()
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(3)
    return model.eval()


def run(args):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    return p.returncode, p.stdout


def convert(src, dst, *flags):
    return run([sys.executable, CONVERT, "to-safetensors", src, dst] + list(flags))


def rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def compare(name, model, ckpt, tmp, channels, size, batch=2, grad_required=True):
    """ramp-cl's logits and input gradient for the checkpoint against the PyTorch model's."""
    torch.manual_seed(1)
    x = torch.rand(batch, channels, size, size)
    y = torch.randint(model_classes(model), (batch,))
    inp, out = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
    mf.write_safetensors(inp, [("input.x", x.numpy()), ("input.y", y.numpy())])
    rc, text = run([MODEL_IO, ckpt, inp, out])
    if rc:
        check(name, False, "model_io: " + text.strip())
        return
    got, _ = mf.read_safetensors(out)
    ref = copy.deepcopy(model).double().eval()
    xd = x.double().requires_grad_(True)
    logits = ref(xd)
    (gx,) = torch.autograd.grad(F.cross_entropy(logits, y), xd)
    e1, e2 = rel(got["logits"], logits.detach()), rel(got["grad_x"], gx)
    check(name, e1 <= TOL and (e2 <= TOL or not grad_required),
          "logits %.2e, input gradient %.2e%s of the largest value (tolerance %.0e)" %
          (e1, e2, "" if grad_required else " (reported, not required)", TOL))


def model_classes(model):
    for head in ("linear", "fc", "logits"):
        if hasattr(model, head):
            return getattr(model, head).out_features
    raise ValueError(model)


def export_loads(name, model, fresh, ckpt, tmp, *flags):
    """from-safetensors, then load_state_dict(strict=True) into the model `fresh` that gives the
    model's tensors (sub_block1, never used, aside)."""
    pt = os.path.join(tmp, "back.pt")
    rc, text = run([sys.executable, CONVERT, "from-safetensors", ckpt, pt] + list(flags))
    if rc:
        check(name, False, text.strip())
        return
    state = torch.load(pt)
    try:
        fresh.load_state_dict(state, strict=True)
    except RuntimeError as e:
        check(name, False, str(e).splitlines()[0])
        return
    same = all(torch.equal(v, fresh.state_dict()[k]) for k, v in model.state_dict().items()
               if not k.startswith("sub_block1."))
    check(name, same, "%d tensors, strict=True" % len(state))


def save(obj, path):
    torch.save(obj, path)
    return path


def with_module_prefix(state):
    return {"module." + k: v for k, v in state.items()}


def main(argv):
    full = "--full-size" in argv
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory(dir=os.environ.get("RAMP_CL_TEST_TMP")) as tmp:
        ck = os.path.join(tmp, "ck.safetensors")

        # small-cnn as ramp-cl's own export, num_batches_tracked of shape [1]: no options needed
        m = randomize(mf.SmallCNN(1, 10, 8, 28), 2)
        state = {k: (v.reshape(1) if k.endswith("num_batches_tracked") else v)
                 for k, v in m.state_dict().items()}
        rc, text = convert(save(state, os.path.join(tmp, "small.pt")), ck)
        check("small-cnn converts without options", rc == 0 and "width        8 " in text and
              "input size   28 " in text and "num_batches_tracked of shape [1]" in text, text)
        compare("small-cnn logits and input gradient", m, ck, tmp, 1, 28)
        export_loads("small-cnn exported back", m, mf.SmallCNN(1, 10, 8, 28), ck, tmp)
        rc, text = convert(os.path.join(tmp, "small.pt"), ck, "--width", "32")
        check("a contradicting --width is refused", rc == 1 and
              "--width 32 contradicts the tensors: conv1.weight has 8 output channels" in text,
              text)
        rc, text = convert(os.path.join(tmp, "small.pt"), ck, "--input-size", "26")
        check("small-cnn --input-size within its map", rc == 0 and "input size   26" in text,
              text)

        # E-AT's / RAMP's PreAct ResNet-18 (softplus), wrapped, DataParallel's prefix
        m = randomize(mf.PreActResNet18(3, 10, 4, "softplus"), 3)
        rc, text = convert(save({"state_dict": with_module_prefix(m.state_dict()), "epoch": 80},
                                os.path.join(tmp, "preact.pt")), ck)
        check("preact-resnet18 converts without options", rc == 0 and "softplus" in text, text)
        compare("preact-resnet18 logits and input gradient", m, ck, tmp, 3, 32)
        # normalising inside (RobustBench's mu, sigma), as Wong2020Fast
        m = randomize(mf.PreActResNet18(3, 10, 4, "relu"), 4)
        m.set_normalization(*CIFAR)
        rc, text = convert(save(m.state_dict(), os.path.join(tmp, "preact-mu.pt")), ck,
                           "--activation", "relu")
        check("preact-resnet18 with mu and sigma", rc == 0 and "mean (0.4914" in text, text)
        compare("preact-resnet18 normalised: logits and input gradient", m, ck, tmp, 3, 32)

        # RobustBench's WideResNet as Carmon2019Unlabeled: sub_block1, wrapped, prefixed
        m = randomize(mf.WideResNet(16, 2, 10, 3, "relu", sub_block1=True), 5)
        rc, text = convert(save({"state_dict": with_module_prefix(m.state_dict())},
                                os.path.join(tmp, "carmon.pt")), ck)
        check("wrn converts without options", rc == 0 and "wrn-16-2" in text and
              "sub_block1.* tensors dropped" in text, text)
        compare("wrn logits and input gradient", m, ck, tmp, 3, 32)
        export_loads("wrn exported back with --sub-block1", m,
                     mf.WideResNet(16, 2, 10, 3, "relu", sub_block1=True), ck, tmp,
                     "--sub-block1")
        rc, text = convert(os.path.join(tmp, "carmon.pt"), ck, "--depth", "28")
        check("a contradicting --depth is refused", rc == 1 and
              "--depth 28 contradicts the tensors: 2 blocks in block1.layer.*" in text, text)
        # normalising (Rice2020Overfitting's mu and sigma), no num_batches_tracked, no fc.bias
        m = randomize(mf.WideResNet(10, 1, 10, 3, "relu", bias_last=False), 6)
        m.set_normalization(*CIFAR)
        state = {k: v for k, v in m.state_dict().items() if "num_batches" not in k}
        rc, text = convert(save(state, os.path.join(tmp, "rice.pt")), ck)
        check("wrn repairs: fc.bias and num_batches_tracked", rc == 0 and
              "fc.bias missing" in text and "without num_batches_tracked" in text, text)
        compare("wrn normalised: logits and input gradient", m, ck, tmp, 3, 16)

        # RobustBench's DMWideResNet (Swish) as the Gowal et al. models
        m = randomize(mf.DMWideResNet(16, 2, 10, 3, "silu", *CIFAR), 7)
        rc, text = convert(save(m.state_dict(), os.path.join(tmp, "gowal.pt")), ck)
        check("dm-wrn converts without options", rc == 0 and "dm-wrn-16-2" in text and
              "silu" in text, text)
        compare("dm-wrn logits and input gradient", m, ck, tmp, 3, 32)
        export_loads("dm-wrn exported back", m, mf.DMWideResNet(16, 2, 10, 3, "silu"), ck, tmp)
        state = {k: v for k, v in m.state_dict().items() if k not in ("mean", "std")}
        rc, text = convert(save(state, os.path.join(tmp, "nomean.pt")), ck)
        check("dm-wrn without mean and std is refused", rc == 1 and
              "give --mean and --std" in text, text)
        rc, text = convert(os.path.join(tmp, "nomean.pt"), ck, "--mean", "0.4914", "0.4822",
                           "0.4465", "--std", "0.2471", "0.2435", "0.2616")
        check("dm-wrn with --mean and --std", rc == 0, text)
        compare("dm-wrn from --mean/--std: logits and input gradient", m, ck, tmp, 3, 32)
        rc, text = convert(os.path.join(tmp, "gowal.pt"), ck, "--arch", "wrn")
        check("a contradicting --arch is refused", rc == 1 and
              "--arch wrn contradicts the tensors: their names are dm-wrn's" in text, text)

        rc, text = convert(save({"encoder.weight": torch.zeros(3)}, os.path.join(tmp, "x.pt")),
                           ck)
        check("an unknown architecture is refused", rc == 1 and
              "cannot tell the architecture from the tensor names (encoder.weight" in text, text)

        if full:
            m = randomize(mf.WideResNet(28, 10, 10, 3, "relu", sub_block1=True), 8)
            rc, text = convert(save(m.state_dict(), os.path.join(tmp, "w.pt")), ck)
            check("WRN-28-10 (RobustBench WideResNet) converts", rc == 0, text)
            compare("WRN-28-10 logits and input gradient", m, ck, tmp, 3, 32, batch=4,
                    grad_required=False)
            m = randomize(mf.DMWideResNet(28, 10, 10, 3, "silu", *CIFAR), 9)
            rc, text = convert(save(m.state_dict(), os.path.join(tmp, "d.pt")), ck)
            check("DM WRN-28-10 converts", rc == 0, text)
            compare("DM WRN-28-10 logits and input gradient", m, ck, tmp, 3, 32, batch=4)
    print("%d failed" % len(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
