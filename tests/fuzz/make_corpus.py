#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora under tests/fuzz/corpus/ (standard library only):
small valid files of each format and edge cases next to them. The config seeds are the
shipped configs plus the hand-written ones in corpus/config/, which this script leaves alone.
Run from anywhere: python3 tests/fuzz/make_corpus.py"""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def put(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- IDX: first_k byte, u32 LE image file length, image file, label file ----
def idx_images(n, h, w, magic=0x803):
    return struct.pack(">IIII", magic, n, h, w) + bytes((i * 7) & 0xFF for i in range(n * h * w))


def idx_labels(n, magic=0x801):
    return struct.pack(">II", magic, n) + bytes(i % 10 for i in range(n))


def idx_input(first_k, images, labels):
    return bytes([first_k]) + struct.pack("<I", len(images)) + images + labels


def gz(b):
    return gzip.compress(b, mtime=0)


put("idx", "valid-2x3x2", idx_input(0, idx_images(2, 3, 2), idx_labels(2)))
put("idx", "valid-first-1", idx_input(1, idx_images(3, 2, 2), idx_labels(3)))
put("idx", "valid-28x28", idx_input(0, idx_images(1, 28, 28), idx_labels(1)))
put("idx", "valid-gzip", idx_input(0, gz(idx_images(2, 4, 4)), gz(idx_labels(2))))
put("idx", "gzip-images-raw-labels", idx_input(2, gz(idx_images(4, 2, 3)), idx_labels(4)))
put("idx", "swapped", idx_input(0, idx_labels(2), idx_images(2, 3, 2)))
put("idx", "truncated-images", idx_input(0, idx_images(2, 3, 2)[:-3], idx_labels(2)))
put("idx", "trailing-labels", idx_input(0, idx_images(2, 3, 2), idx_labels(2) + b"\0"))
put("idx", "count-mismatch", idx_input(0, idx_images(2, 3, 2), idx_labels(3)))
put("idx", "label-10", idx_input(0, idx_images(1, 1, 1), struct.pack(">II", 0x801, 1) + b"\x0a"))
put("idx", "zero-dim", idx_input(0, struct.pack(">IIII", 0x803, 1, 0, 5), idx_labels(1)))
put("idx", "huge-claim", idx_input(0, struct.pack(">IIII", 0x803, 0xFFFFFFFF, 0xFFFF, 0xFFFF) +
                                   b"\1\2\3", struct.pack(">II", 0x801, 0xFFFFFFFF)))
put("idx", "short-header", idx_input(0, b"\0\0\x08\x03\0\0", idx_labels(1)))
put("idx", "gzip-cut", idx_input(0, gz(idx_images(3, 5, 5))[:-12], idx_labels(3)))

# ---- CIFAR-10: first_k byte, test_batch.bin ----
def cifar_record(label, seed):
    return bytes([label]) + bytes((seed * 31 + i) & 0xFF for i in range(3072))


put("cifar", "one-record", b"\0" + cifar_record(3, 1))
put("cifar", "three-first-2", b"\2" + cifar_record(0, 1) + cifar_record(9, 2) + cifar_record(5, 3))
put("cifar", "label-10", b"\0" + cifar_record(10, 1))
put("cifar", "partial-record", b"\0" + cifar_record(1, 1) + cifar_record(2, 2)[:100])
put("cifar", "empty", b"\0")
put("cifar", "first-k-too-many", b"\5" + cifar_record(1, 1))


# ---- safetensors: whole files ----
def st_file(tensors, meta=None, pad=True, raw_header=None):
    """tensors: (name, dtype, shape, bytes); offsets follow in order."""
    h, off, data = {}, 0, b""
    if meta is not None:
        h["__metadata__"] = meta
    for name, dtype, shape, payload in tensors:
        h[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(payload)]}
        off += len(payload)
        data += payload
    text = raw_header if raw_header is not None else json.dumps(h, separators=(",", ":"))
    hb = text.encode()
    if pad:
        hb += b" " * (-len(hb) % 8)
    return struct.pack("<Q", len(hb)) + hb + data


f32 = lambda *v: struct.pack("<%df" % len(v), *v)
i64 = lambda *v: struct.pack("<%dq" % len(v), *v)
put("safetensors", "small-cnn-like", st_file(
    [("conv.weight", "F32", [2, 1, 2, 2], f32(*range(8))), ("conv.bias", "F32", [2], f32(0.5, -1)),
     ("bn.num_batches_tracked", "I64", [], i64(7))], meta={"format": "pt", "epoch": "3"}))
put("safetensors", "empty-object", st_file([]))
put("safetensors", "metadata-only", st_file([], meta={"c": "3", "b": "2", "a": "1"}))
put("safetensors", "empty-tensor", st_file([("e", "F32", [0, 5], b""), ("x", "U8", [3], b"abc")]))
put("safetensors", "all-dtypes", st_file(
    [("b", "BOOL", [1], b"\1"), ("u8", "U8", [1], b"\2"), ("i8", "I8", [1], b"\3"),
     ("f8a", "F8_E5M2", [1], b"\4"), ("f8b", "F8_E4M3", [1], b"\5"), ("i16", "I16", [1], b"\6\0"),
     ("u16", "U16", [1], b"\7\0"), ("f16", "F16", [1], b"\0\x3c"), ("bf16", "BF16", [1], b"\0\x3f"),
     ("i32", "I32", [1], b"\1\0\0\0"), ("u32", "U32", [1], b"\1\0\0\0"), ("f64", "F64", [1], b"\0" * 8),
     ("u64", "U64", [1], b"\1" + b"\0" * 7)]))
put("safetensors", "escapes", st_file([], raw_header='{"__metadata__":{"k\\u00e9\\ud83d\\ude00":"v\\n\\t\\"\\\\\\/"},'
                                      '"n\\u0041me":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}') + b"ab")
put("safetensors", "out-of-order", st_file([], raw_header='{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},'
                                           '"a":{"shape":[1],"data_offsets":[0,1],"dtype":"U8"}}') + b"xy")
put("safetensors", "offsets-past-end", st_file([], raw_header='{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}') + b"1234")
put("safetensors", "overlap", st_file([], raw_header='{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
                                      '"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}') + b"xyz")
put("safetensors", "huge-shape", st_file([], raw_header='{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}') + b"\0" * 8)
put("safetensors", "header-length-lies", struct.pack("<Q", 1 << 40) + b'{"a":{}}')
put("safetensors", "short", b"\x02\0\0\0")

# ---- configs: the shipped ones (the hand-written ones live in corpus/config/) ----
for src in ["configs/natural-fmnist.yaml", "configs/quickstart.yaml", "configs/fmnist-eat.yaml",
            "configs/fmnist-max.yaml", "tests/tiny-natural.yaml"]:
    with open(os.path.join(ROOT, src), "rb") as f:
        put("config", os.path.basename(src), f.read())
