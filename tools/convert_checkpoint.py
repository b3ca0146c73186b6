#!/usr/bin/python3
"""Convert model checkpoints between PyTorch and ramp-cl (safetensors).

  convert_checkpoint.py to-safetensors IN.pt OUT.safetensors [--arch A] [--depth D] [--width W]
      [--in-channels C] [--num-classes K] [--input-size S] [--activation ACT]
      [--mean M [M ...] --std S [S ...]]
  convert_checkpoint.py from-safetensors IN.safetensors OUT.pt [--sub-block1]

to-safetensors reads a state dict saved by torch.save, bare or wrapped as {'state_dict': ...} or
{'model': ...}, drops the 'module.' prefix that DataParallel adds, tells the architecture from
the tensor names and its size from their shapes, and says what it inferred:

  small-cnn        conv1-3, bn1-3, linear: ramp-cl's small CNN
  preact-resnet18  conv1, layerL.B.*, bn, linear: E-AT's and RAMP's PreActResNet18
                   (fast_models.py), e.g. their pretr_Linf / pretr_L1 / pretr_L2 files
  wrn              conv1, blockG.layer.B.*, bn1, fc: RobustBench's WideResNet (wide_resnet.py),
                   the Carmon et al. models (depth 6n + 4 from the blocks, width from block1)
  dm-wrn           mean, std, init_conv, layer.G.block.B.*, batchnorm, logits: RobustBench's
                   DMWideResNet (dm_wide_resnet.py), the Gowal et al. models

The options override what cannot be read from the tensors, the activation (default: the
architecture's, ReLU for small-cnn and wrn, softplus for preact-resnet18 as E-AT and RAMP train
it, SiLU (Swish) for dm-wrn) and the input size (default 32 for 3 channels, 28 for 1; small-cnn's
follows from its classifier); a value the tensors determine (depth, width, channels, classes) may
be given too but must agree with them.

Input normalisation inside the model: tensors mu and sigma [1,C,1,1] (RobustBench's normalising
wrappers) or, for dm-wrn, mean and std [C,1,1]. --mean/--std supply them when the file lacks
them and must agree with them when it has them.

Repairs, each reported: a num_batches_tracked of shape [1] becomes a scalar, a missing one
(files from PyTorch before 0.4.1) 0; sub_block1.* (RobustBench's WideResNet(sub_block1=True),
which its forward never uses) is dropped; a missing fc.bias (bias_last=False) becomes zeros.
Every other tensor must be the model's, with its shape, and every tensor of the model present.
Floating-point tensors are written as F32, integer ones as I64, with the __metadata__ ramp-cl
reads (format, format_version and the model's description).

from-safetensors writes the model's tensors as a state dict for torch.load / load_state_dict,
leaving out the tensors named 'train.*' (optimiser and resume state that only ramp-cl uses);
--sub-block1 adds sub_block1.* as a copy of block1.* for RobustBench's WideResNet(sub_block1=True)
(e.g. Carmon2019Unlabeled) to load it with strict=True.

Needs PyTorch and NumPy (Debian: apt-get install python3-torch; run with /usr/bin/python3), and
the model definitions of tests/fixtures/make_fixtures.py in the ramp-cl source tree. The
safetensors format is read and written here by hand: the `safetensors` package is not needed.
"""

import argparse
import collections
import importlib.util
import json
import math
import os
import struct
import sys
import tempfile

import torch

FORMAT = "ramp-cl-checkpoint"
FORMAT_VERSION = "1"
TRAIN_PREFIX = "train."

# safetensors dtype -> (torch dtype, bytes per element), for those this torch has.
DTYPES = {
    "BOOL": (torch.bool, 1), "U8": (torch.uint8, 1), "I8": (torch.int8, 1),
    "I16": (torch.int16, 2), "I32": (torch.int32, 4), "I64": (torch.int64, 8),
    "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2), "F32": (torch.float32, 4),
    "F64": (torch.float64, 8),
}


class Error(Exception):
    pass


# --------------------------------------------------------------------------------------------
# safetensors: u64 little-endian header length, JSON header, raw little-endian data.

def atomic_write(path, write):
    """Call write(file) on a temporary file in path's directory, sync it and rename it to path:
    a failed write leaves an existing file at path as it was."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                               prefix=os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; torch.save's files are readable
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, tensor) in file order."""
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, t in tensors:
        t = t.detach().cpu().contiguous()
        if t.is_floating_point():
            dtype, t, np_dtype = "F32", t.to(torch.float32), "<f4"
        elif t.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
            dtype, t, np_dtype = "I64", t.to(torch.int64), "<i8"
        else:
            raise Error("tensor %s: dtype %s cannot be stored (only floating point and integer)"
                        % (name, t.dtype))
        data = t.numpy().astype(np_dtype, copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * (-len(hdr) % 8)  # the data section starts 8-byte aligned

    def write(f):
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for b in blobs:
            f.write(b)
    atomic_write(path, write)


def _unique_keys(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise Error("header: %s given twice" % k)
        d[k] = v
    return d


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def read_safetensors(path):
    """Returns (list of (name, tensor) in header order, metadata dict); checks what ramp-cl
    checks: sizes that match shapes, tensors that tile the data section exactly."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise Error("%d bytes, too short for the 8-byte header length" % len(raw))
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise Error("header length %d exceeds the %d bytes after it" % (n, len(raw) - 8))
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=_unique_keys)
    except ValueError as e:
        raise Error("header: %s" % e)
    if not isinstance(header, dict):
        raise Error("header: not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise Error("__metadata__ must be an object of strings")
    data = raw[8 + n:]
    tensors, spans = [], []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise Error("tensor %s: want exactly dtype, shape and data_offsets" % name)
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPES:
            raise Error("tensor %s: dtype %r not supported" % (name, dtype))
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise Error("tensor %s: bad shape %r" % (name, shape))
        if (not isinstance(offsets, list) or len(offsets) != 2 or
                not all(_is_int(o) for o in offsets) or
                not 0 <= offsets[0] <= offsets[1] <= len(data)):
            raise Error("tensor %s: data_offsets %r outside the %d-byte data section"
                        % (name, offsets, len(data)))
        torch_dtype, size = DTYPES[dtype]
        count = 1
        for d in shape:
            count *= d
        begin, end = offsets
        if count * size != end - begin:
            raise Error("tensor %s: shape %s of %s needs %d bytes but data_offsets %s hold %d"
                        % (name, shape, dtype, count * size, offsets, end - begin))
        if count:
            t = torch.frombuffer(bytearray(data[begin:end]), dtype=torch_dtype).reshape(shape)
        else:
            t = torch.empty(shape, dtype=torch_dtype)
        tensors.append((name, t))
        spans.append((begin, end, name))
    expected = 0
    for begin, end, name in sorted(spans):
        if begin != expected:
            raise Error("tensor %s: data starts at %d, expected %d (overlap or gap)"
                        % (name, begin, expected))
        expected = end
    if expected != len(data):
        raise Error("%d unused bytes after the last tensor" % (len(data) - expected))
    return tensors, meta


# --------------------------------------------------------------------------------------------
# Conversions.

def load_state_dict(path, trust_pickle):
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as e:  # torch.load raises many kinds; all mean "cannot use this file"
        hint = "" if trust_pickle else " (if you trust the file, rerun with --trust-pickle)"
        raise Error("cannot load: %s%s" % (e, hint))
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise Error("not a state dict (a %s)" % type(obj).__name__)
    out = collections.OrderedDict()
    for name, t in obj.items():
        if not isinstance(t, torch.Tensor):
            raise Error("%s is a %s, not a tensor: not a state dict" % (name, type(t).__name__))
        short = name[len("module."):] if name.startswith("module.") else name
        if short in out:
            raise Error("%s and module.%s both present" % (short, short))
        out[short] = t
    return out


def reference_models():
    """tests/fixtures/make_fixtures.py: the PyTorch definitions of ramp-cl's models (beside this
    script in an installed copy, as the Debian package's /usr/share/ramp-cl/tools)."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "make_fixtures.py")
    if not os.path.exists(path):
        path = os.path.join(here, "..", "tests", "fixtures", "make_fixtures.py")
    if not os.path.exists(path):
        raise Error("needs %s (the model definitions of the ramp-cl source tree)" % path)
    spec = importlib.util.spec_from_file_location("make_fixtures", path)
    mf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mf)
    return mf


# Tensors that name an architecture, most specific first.
SIGNATURES = [
    ("dm-wrn", ("init_conv.weight", "layer.0.block.0.conv_0.weight", "logits.weight")),
    ("wrn", ("conv1.weight", "block1.layer.0.conv1.weight", "fc.weight")),
    ("preact-resnet18", ("conv1.weight", "layer1.0.conv1.weight", "linear.weight")),
    ("small-cnn", ("conv1.weight", "conv3.weight", "bn3.weight", "linear.weight")),
]
ACTIVATIONS = ("softplus", "relu", "silu")
DEFAULT_ACTIVATION = {"small-cnn": "relu", "preact-resnet18": "softplus", "wrn": "relu",
                      "dm-wrn": "silu"}
WHY_ACTIVATION = {"small-cnn": "small-cnn's", "preact-resnet18": "E-AT's and RAMP's softplus",
                  "wrn": "the Carmon et al. models'", "dm-wrn": "the Gowal et al. models' Swish"}


def norm_names(arch):
    return ("mean", "std") if arch == "dm-wrn" else ("mu", "sigma")


def shape_of(state, name):
    return list(state[name].shape)


class Inferred:
    """The model's options, each with where it came from."""

    def __init__(self):
        self.value, self.why = {}, {}

    def set(self, key, value, why):
        self.value[key], self.why[key] = value, why


def infer_from_tensors(state, arch):
    """Depth, width, channels and classes as the tensors determine them."""
    got = Inferred()
    if arch == "small-cnn":
        w, c = shape_of(state, "conv1.weight")[:2]
        k, feat = shape_of(state, "linear.weight")
        side = math.isqrt(feat // (4 * w)) if feat % (4 * w) == 0 else 0
        if side * side * 4 * w != feat:
            raise Error("linear.weight is %s: not 4 x %d channels on a square map" %
                        (shape_of(state, "linear.weight"), w))
        got.set("width", w, "conv1.weight has %d output channels" % w)
        got.set("input_size", 4 * side, "linear.weight reads a %dx%d map of %d channels (inputs "
                "of %d to %d pixels give that)" % (side, side, 4 * w, 4 * side - 3, 4 * side))
        stem, head = "conv1.weight", "linear.weight"
    elif arch == "preact-resnet18":
        w = shape_of(state, "conv1.weight")[0]
        got.set("width", w, "conv1.weight has %d output channels" % w)
        stem, head = "conv1.weight", "linear.weight"
    else:
        dm = arch == "dm-wrn"
        stem, head = ("init_conv.weight", "logits.weight") if dm else ("conv1.weight", "fc.weight")
        fmt = "layer.0.block.%d.conv_0.weight" if dm else "block1.layer.%d.conv1.weight"
        n = 0
        while fmt % n in state:
            n += 1
        first = fmt % 0
        oc = shape_of(state, first)[0]
        if oc % 16:
            raise Error("%s has %d output channels, not 16 x a width" % (first, oc))
        got.set("depth", 6 * n + 4, "%d blocks in %s" %
                (n, "layer.0.block.*" if dm else "block1.layer.*"))
        got.set("width", oc // 16, "%s has %d = 16 x %d output channels" % (first, oc, oc // 16))
    c = shape_of(state, stem)[1]
    got.set("in_channels", c, "%s reads %d channel(s)" % (stem, c))
    k = shape_of(state, head)[0]
    got.set("num_classes", k, "%s has %d outputs" % (head, k))
    return got


def repair(state, notes):
    """The repairs the docstring lists that need no architecture."""
    out = collections.OrderedDict()
    reshaped = 0
    for name, t in state.items():
        if name.endswith("num_batches_tracked") and t.dim() and t.numel() == 1:
            t, reshaped = t.reshape(()), reshaped + 1
        out[name] = t
    if reshaped:
        notes.append("%d num_batches_tracked of shape [1] stored as scalars" % reshaped)
    missing = [n[:-len("running_mean")] for n in out if n.endswith(".running_mean") and
               n[:-len("running_mean")] + "num_batches_tracked" not in out]
    if missing:
        for prefix in missing:
            out[prefix + "num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
        notes.append("%d BatchNorm layers without num_batches_tracked (PyTorch before 0.4.1): set "
                     "to 0" % len(missing))
    return out


def describe_values(v):
    return "(%s)" % ", ".join("%.7g" % x for x in v)  # float32's digits


def to_safetensors(args):
    state = load_state_dict(args.input, args.trust_pickle)
    notes = []
    state = repair(state, notes)
    archs = [a for a, names in SIGNATURES if all(n in state for n in names)]
    if args.arch and archs and args.arch != archs[0]:
        raise Error("--arch %s contradicts the tensors: their names are %s's (%s)" %
                    (args.arch, archs[0], ", ".join(dict(SIGNATURES)[archs[0]])))
    if not archs:
        if args.arch:
            raise Error("the tensors are not those of %s: it needs %s" %
                        (args.arch, ", ".join(dict(SIGNATURES)[args.arch])))
        raise Error("cannot tell the architecture from the tensor names (%s, ...): ramp-cl reads "
                    "small-cnn, preact-resnet18, wrn (RobustBench wide_resnet.py) and dm-wrn "
                    "(dm_wide_resnet.py)" % ", ".join(list(state)[:4]))
    arch = archs[0]
    got = infer_from_tensors(state, arch)
    for key in ("depth", "width", "in_channels", "num_classes", "input_size"):
        flag = getattr(args, key)
        if flag is None:
            continue
        have = got.value.get(key)
        if key == "input_size" and arch == "small-cnn":
            ok = (flag + 3) // 4 == have // 4
        else:
            ok = have is None or flag == have
        if not ok:
            raise Error("--%s %d contradicts the tensors: %s" %
                        (key.replace("_", "-"), flag, got.why[key]))
        if have is None or flag != have:
            got.set(key, flag, "--%s" % key.replace("_", "-"))
    if "input_size" not in got.value:
        size = 32 if got.value["in_channels"] == 3 else 28
        got.set("input_size", size, "not in the tensors: %s's; --input-size to change" %
                ("CIFAR-10" if size == 32 else "(Fashion-)MNIST"))
    if args.activation:
        got.set("activation", args.activation, "--activation")
    else:
        got.set("activation", DEFAULT_ACTIVATION[arch], "not in the tensors: %s; --activation to "
                "change" % WHY_ACTIVATION[arch])

    # input normalisation
    c = got.value["in_channels"]
    mean_name, std_name = norm_names(arch)
    mean = std = None
    if (mean_name in state) != (std_name in state):
        raise Error("has %s but not %s" % ((mean_name, std_name) if mean_name in state
                                           else (std_name, mean_name)))
    if (args.mean is None) != (args.std is None):
        raise Error("--mean and --std go together")
    if mean_name in state:
        mean = [float(x) for x in state.pop(mean_name).reshape(-1)]
        std = [float(x) for x in state.pop(std_name).reshape(-1)]
        if len(mean) != c or len(std) != c:
            raise Error("%s and %s hold %d and %d values for %d input channels" %
                        (mean_name, std_name, len(mean), len(std), c))
        if args.mean is not None and not all(
                abs(a - b) <= 1e-6 * max(1.0, abs(b)) for a, b in zip(args.mean + args.std,
                                                                       mean + std)):
            raise Error("--mean %s --std %s contradict the tensors: %s %s, %s %s" %
                        (describe_values(args.mean), describe_values(args.std), mean_name,
                         describe_values(mean), std_name, describe_values(std)))
        got.set("normalize", True, "tensors %s and %s" % (mean_name, std_name))
    elif args.mean is not None:
        mean, std = args.mean, args.std
        if len(mean) != c or len(std) != c:
            raise Error("--mean and --std need %d values each (one per input channel)" % c)
        got.set("normalize", True, "--mean and --std")
    elif arch == "dm-wrn":
        raise Error("has no mean and std, which DMWideResNet always has: give --mean and --std "
                    "(the Gowal et al. models: --mean 0.4914 0.4822 0.4465 --std 0.2471 0.2435 "
                    "0.2616, RobustBench's CIFAR10_MEAN and CIFAR10_STD)")
    if mean is not None and not all(s > 0 for s in std):
        raise Error("input normalisation std %s: every value must be positive" %
                    describe_values(std))

    if arch == "wrn":
        dropped = [n for n in state if n.startswith("sub_block1.")]
        for n in dropped:
            del state[n]
        if dropped:
            notes.append("%d sub_block1.* tensors dropped (RobustBench's WideResNet(sub_block1="
                         "True): its forward never uses them)" % len(dropped))
        if "fc.bias" not in state:
            state["fc.bias"] = torch.zeros(got.value["num_classes"])
            notes.append("fc.bias missing (bias_last=False): written as zeros, the same function")

    v = got.value
    mf = reference_models()
    model = mf.build_model(arch, v["in_channels"], v["num_classes"], v["width"], v["input_size"],
                           v["activation"], v.get("depth", 0), mean, std)
    want = model.state_dict()
    if mean is not None:
        state[mean_name], state[std_name] = (torch.tensor(mean).reshape(want[mean_name].shape),
                                             torch.tensor(std).reshape(want[std_name].shape))
    unknown = [n for n in state if n not in want]
    missing = [n for n in want if n not in state]
    if unknown or missing:
        raise Error("not a %s state dict: %s%s%s" % (
            mf_name(arch, v), "unexpected %s" % ", ".join(unknown[:5]) if unknown else "",
            "; " if unknown and missing else "",
            "missing %s" % ", ".join(missing[:5]) if missing else ""))
    for n, t in want.items():
        if list(state[n].shape) != list(t.shape):
            raise Error("%s is %s, %s has it %s" % (n, list(state[n].shape), mf_name(arch, v),
                                                  list(t.shape)))
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "arch": arch,
        "activation": v["activation"], "width": str(v["width"]),
        "in_channels": str(v["in_channels"]), "num_classes": str(v["num_classes"]),
        "input_size": str(v["input_size"]),
    }
    if "depth" in v:
        meta["depth"] = str(v["depth"])
    write_safetensors(args.output, [(n, state[n]) for n in want], meta)
    print("%s: %s" % (args.input, mf_name(arch, v)))
    for key in ("depth", "width", "in_channels", "num_classes", "input_size", "activation"):
        if key in v:
            print("  %-12s %-9s (%s)" % (key.replace("_", " "), v[key], got.why[key]))
    if mean is not None:
        print("  normalised   mean %s, std %s (%s)" % (describe_values(mean),
                                                        describe_values(std), got.why["normalize"]))
    for n in notes:
        print("  note: %s" % n)
    print("%s: %d tensors written" % (args.output, len(want)))


def mf_name(arch, v):
    return "%s-%d-%d" % (arch, v["depth"], v["width"]) if "depth" in v else arch


def from_safetensors(args):
    tensors, meta = read_safetensors(args.input)
    if meta.get("format", FORMAT) != FORMAT:
        print("%s: warning: format %r, not %r" % (args.input, meta["format"], FORMAT),
              file=sys.stderr)
    state = collections.OrderedDict(
        (name, t) for name, t in tensors if not name.startswith(TRAIN_PREFIX))
    left_out = len(tensors) - len(state)
    if args.sub_block1:
        if meta.get("arch") != "wrn":
            raise Error("--sub-block1 is for wrn checkpoints, this is %s" % meta.get("arch"))
        for name in [n for n in state if n.startswith("block1.")]:
            state["sub_block1." + name[len("block1."):]] = state[name].clone()
    atomic_write(args.output, lambda f: torch.save(state, f))
    print("%s: %d tensors written, %d %s* left out" %
          (args.output, len(state), left_out, TRAIN_PREFIX))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("to-safetensors", help="PyTorch state dict -> ramp-cl checkpoint")
    t.add_argument("input", metavar="IN.pt")
    t.add_argument("output", metavar="OUT.safetensors")
    t.add_argument("--arch", choices=[a for a, _ in SIGNATURES])
    t.add_argument("--depth", type=int, help="WideResNets: 6n + 4")
    t.add_argument("--width", type=int)
    t.add_argument("--in-channels", type=int)
    t.add_argument("--num-classes", type=int)
    t.add_argument("--input-size", type=int)
    t.add_argument("--activation", choices=ACTIVATIONS)
    t.add_argument("--mean", type=float, nargs="+", help="input normalisation, per channel")
    t.add_argument("--std", type=float, nargs="+")
    t.add_argument("--trust-pickle", action="store_true",
                   help="load arbitrary pickled objects (runs code from the file)")
    t.set_defaults(run=to_safetensors)
    f = sub.add_parser("from-safetensors", help="ramp-cl checkpoint -> PyTorch state dict")
    f.add_argument("input", metavar="IN.safetensors")
    f.add_argument("output", metavar="OUT.pt")
    f.add_argument("--sub-block1", action="store_true",
                   help="wrn: add sub_block1.* (a copy of block1.*) for RobustBench's "
                        "WideResNet(sub_block1=True)")
    f.set_defaults(run=from_safetensors)
    args = p.parse_args(argv)
    try:
        args.run(args)
    except Error as e:
        print("convert_checkpoint.py: %s: %s" % (args.input, e), file=sys.stderr)
        return 1
    except OSError as e:  # its message names the file
        print("convert_checkpoint.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
