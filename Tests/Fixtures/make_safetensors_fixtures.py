#!/usr/bin/env python3
"""Writes the safetensors golden fixtures with the official `safetensors` library.

Outputs, beside this script:
  reference.safetensors   tensors of every dtype NumPy can hold (+ BF16 via
                          ml_dtypes), a scalar, a 0-element tensor, metadata;
                          written by safetensors.numpy.save_file
  reference.json          what each tensor holds: dtype, shape, the values
                          converted to f32 by NumPy (as f32 bit patterns, hex),
                          and for integer dtypes the exact integers (as strings)
  float8.safetensors      every byte pattern of each 8-bit float type, and the
                          same values converted to f32 by ml_dtypes (tensors
                          "<DTYPE>.expected"); skipped without ml_dtypes

Re-run with:  pip install safetensors numpy ml_dtypes
              python3 Tests/Fixtures/make_safetensors_fixtures.py
Made with safetensors 0.8.0, numpy 2.4, ml_dtypes 0.6.0.
"""
import json
import os
import sys

import numpy as np
import safetensors
from safetensors.numpy import save_file

try:
    import ml_dtypes
except ImportError:  # BF16 and the F8 fixture need ml_dtypes
    ml_dtypes = None

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20240611)

DTYPE_NAMES = {
    np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
    np.dtype(np.int64): "I64", np.dtype(np.uint64): "U64", np.dtype(np.int32): "I32",
    np.dtype(np.uint32): "U32", np.dtype(np.int16): "I16", np.dtype(np.uint16): "U16",
    np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL",
}
if ml_dtypes is not None:
    DTYPE_NAMES[np.dtype(ml_dtypes.bfloat16)] = "BF16"


def main():
    specials32 = np.array([np.inf, -np.inf, np.nan, -0.0, 1e-45, 3.4028235e38], np.float32)
    tensors = {
        "layer.0.weight": np.concatenate([rng.standard_normal(10).astype(np.float32), specials32]).reshape(4, 4),
        "layer.0.bias.f16": np.concatenate([
            rng.standard_normal(5).astype(np.float16),
            np.array([65504, -65504, 6e-8, 0.0, -0.0, np.inf, np.nan], np.float16),
        ]).reshape(3, 4),
        "f64": np.array([np.pi, 1e300, -1e-300, -2.5, 0.1, 2.0**-149 * 1.5], np.float64),
        "ids.i64": np.array([[0, -1, 2**62, -2**63], [2**53 + 1, 2**63 - 1, 123456789, -987654321]], np.int64),
        "ids.i32": np.array([[-2**31, 2**31 - 1], [7, -7]], np.int32),
        "u32": np.array([0, 1, 2**32 - 1, 16777217], np.uint32),
        "u64.small": np.array([0, 5, 2**63 - 1], np.uint64),
        "u64.large": np.array([2**64 - 1, 2**63], np.uint64),
        "i16": np.array([-32768, 32767, -1], np.int16),
        "u16": np.array([0, 65535, 300], np.uint16),
        "i8": np.array([[-128, 127], [0, -5]], np.int8),
        "u8": np.array([0, 255, 17], np.uint8),
        "mask": np.array([[True, False, True], [False, False, True]]),
        "scalar": np.array(3.25, np.float32),
        "empty": np.zeros((0, 3), np.float32),
    }
    if ml_dtypes is not None:
        tensors["layer.0.weight.bf16"] = np.concatenate([
            rng.standard_normal(6).astype(ml_dtypes.bfloat16),
            np.array([3.3895314e38, -0.0, np.inf, np.nan, 1e-40, 1.0], ml_dtypes.bfloat16),
        ]).reshape(2, 6)
    else:
        print("ml_dtypes not installed: no BF16 tensor in the fixture", file=sys.stderr)

    metadata = {"format": "np", "producer": "make_safetensors_fixtures.py",
                "note": "na\u00efve \u2713 \"quoted\" back\\slash\nnew line"}
    save_file(tensors, os.path.join(HERE, "reference.safetensors"), metadata=metadata)

    expected = {"safetensors_version": safetensors.__version__, "metadata": metadata, "tensors": {}}
    with np.errstate(over="ignore"):
        for name, array in tensors.items():
            as_f32 = np.ascontiguousarray(array.astype(np.float32)).reshape(-1)
            entry = {
                "dtype": DTYPE_NAMES[array.dtype],
                "shape": list(array.shape),
                "float32_bits": ["%08x" % bits for bits in as_f32.view(np.uint32)],
            }
            if array.dtype.kind in "iub":
                entry["integers"] = [str(int(v)) for v in array.reshape(-1)]
            expected["tensors"][name] = entry
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")

    if ml_dtypes is not None:
        float8 = {}
        for dtype_name, ml_name in [("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2"),
                                    ("F8_E4M3FNUZ", "float8_e4m3fnuz"), ("F8_E5M2FNUZ", "float8_e5m2fnuz"),
                                    ("F8_E8M0", "float8_e8m0fnu")]:
            patterns = np.arange(256, dtype=np.uint8).view(getattr(ml_dtypes, ml_name))
            float8[dtype_name] = patterns
            float8[dtype_name + ".expected"] = patterns.astype(np.float32)
        save_file(float8, os.path.join(HERE, "float8.safetensors"))
    else:
        print("ml_dtypes not installed: float8.safetensors not written", file=sys.stderr)


if __name__ == "__main__":
    main()
