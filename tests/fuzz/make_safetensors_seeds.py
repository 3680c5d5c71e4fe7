#!/usr/bin/env python3
"""Writes the safetensors fuzzer's seed files into corpus/safetensors/ (stdlib only).

The layout follows the safetensors spec: u64 little-endian header length, JSON header
padded with spaces to a multiple of 8, then the tensor bytes in offset order.
Run: python3 tests/fuzz/make_safetensors_seeds.py
"""
import json
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent / "corpus" / "safetensors"


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


SEEDS = {
    "empty.safetensors": safetensors([], {"format": "pt"}),
    "two_tensors.safetensors": safetensors([
        ("wte.weight", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)),
        ("ln.bias", "BF16", [3], b"\x80\x3f\x00\x40\x40\x40"),
    ]),
    "mixed.safetensors": safetensors([
        ("scalar", "I64", [], struct.pack("<q", -7)),
        ("empty", "F16", [0, 3], b""),
        ("mask", "BOOL", [4], b"\x01\x00\x01\x01"),
        ("ids", "I32", [2], struct.pack("<2i", 5, 9)),
    ], {"step": "12"}),
}

if __name__ == "__main__":
    for name, blob in SEEDS.items():
        (HERE / name).write_bytes(blob)
        print(f"{name}: {len(blob)} bytes")
