#!/usr/bin/python3
"""Convert model checkpoints between PyTorch and ramp-cl (safetensors).

  convert_checkpoint.py to-safetensors IN.pt OUT.safetensors [--arch preact-resnet18
      --activation softplus --width 64 --in-channels 3 --num-classes 10 --input-size 32]
  convert_checkpoint.py from-safetensors IN.safetensors OUT.pt

to-safetensors reads a state dict saved by torch.save, bare or wrapped as {'state_dict': ...} or
{'model': ...}, drops the 'module.' prefix that DataParallel adds, and writes floating-point
tensors as F32 and integer ones (BatchNorm's num_batches_tracked) as I64, with the __metadata__
that ramp-cl reads: format, format_version and the model's description from the options.

from-safetensors writes the model's tensors as a state dict for torch.load / load_state_dict,
leaving out the tensors named 'train.*' (optimiser and resume state that only ramp-cl uses).

Needs PyTorch and NumPy (Debian: apt-get install python3-torch; run with /usr/bin/python3). The
safetensors format is read and written here by hand: the `safetensors` package is not needed.
"""

import argparse
import collections
import json
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


def to_safetensors(args):
    state = load_state_dict(args.input, args.trust_pickle)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "arch": args.arch,
        "activation": args.activation, "width": str(args.width),
        "in_channels": str(args.in_channels), "num_classes": str(args.num_classes),
        "input_size": str(args.input_size),
    }
    write_safetensors(args.output, list(state.items()), meta)
    print("%s: %d tensors written" % (args.output, len(state)))


def from_safetensors(args):
    tensors, meta = read_safetensors(args.input)
    if meta.get("format", FORMAT) != FORMAT:
        print("%s: warning: format %r, not %r" % (args.input, meta["format"], FORMAT),
              file=sys.stderr)
    state = collections.OrderedDict(
        (name, t) for name, t in tensors if not name.startswith(TRAIN_PREFIX))
    atomic_write(args.output, lambda f: torch.save(state, f))
    print("%s: %d tensors written, %d %s* left out" %
          (args.output, len(state), len(tensors) - len(state), TRAIN_PREFIX))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("to-safetensors", help="PyTorch state dict -> ramp-cl checkpoint")
    t.add_argument("input", metavar="IN.pt")
    t.add_argument("output", metavar="OUT.safetensors")
    t.add_argument("--arch", default="preact-resnet18")
    t.add_argument("--activation", default="softplus")
    t.add_argument("--width", type=int, default=64)
    t.add_argument("--in-channels", type=int, default=3)
    t.add_argument("--num-classes", type=int, default=10)
    t.add_argument("--input-size", type=int, default=32)
    t.add_argument("--trust-pickle", action="store_true",
                   help="load arbitrary pickled objects (runs code from the file)")
    t.set_defaults(run=to_safetensors)
    f = sub.add_parser("from-safetensors", help="ramp-cl checkpoint -> PyTorch state dict")
    f.add_argument("input", metavar="IN.safetensors")
    f.add_argument("output", metavar="OUT.pt")
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
