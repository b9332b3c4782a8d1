#!/usr/bin/env python3
"""Reads a safetensors file with the official library, for Heed's tests.

Usage: read_with_reference_safetensors.py INPUT [RESAVED]

Prints JSON to stdout: {"metadata": {...}, "tensors": {name: {"dtype", "shape",
"values"}}} where values are float.hex() strings of each element converted to
f64 by NumPy (integers: decimal strings). With RESAVED, also writes the same
arrays and metadata back out with safetensors.numpy.save_file, so the caller
can compare bytes with what Heed wrote. Exit status 2 when the library rejects
the file (message on stderr).
"""
import json
import sys

import numpy as np
from safetensors import deserialize, safe_open
from safetensors.numpy import save_file

try:
    import ml_dtypes
except ImportError:
    ml_dtypes = None

NUMPY_TYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "U64": np.uint64,
    "I32": np.int32, "U32": np.uint32, "I16": np.int16, "U16": np.uint16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}
if ml_dtypes is not None:
    NUMPY_TYPES["BF16"] = ml_dtypes.bfloat16


def main():
    path = sys.argv[1]
    with open(path, "rb") as f:
        raw = f.read()
    try:
        entries = deserialize(raw)
        with safe_open(path, framework="np") as f:
            metadata = f.metadata() or {}
    except Exception as error:  # the library's SafetensorError
        print(f"rejected: {error}", file=sys.stderr)
        sys.exit(2)

    arrays, out = {}, {}
    for name, view in entries:
        array = np.frombuffer(bytes(view["data"]), dtype=NUMPY_TYPES[view["dtype"]]).reshape(view["shape"])
        arrays[name] = array
        flat = array.reshape(-1)
        if array.dtype.kind in "iub":
            values = [str(int(v)) for v in flat]
        else:
            values = [float(v).hex() for v in flat.astype(np.float64)]
        out[name] = {"dtype": view["dtype"], "shape": list(view["shape"]), "values": values}
    print(json.dumps({"metadata": metadata, "tensors": out}))
    if len(sys.argv) > 2:
        save_file(arrays, sys.argv[2], metadata=metadata or None)


if __name__ == "__main__":
    main()
