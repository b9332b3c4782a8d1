#!/usr/bin/env python3
"""Writes the GGUF fixtures that HeedModelsTests hold Heed's reader to.

    python3 Tests/Fixtures/models/make_gguf_fixtures.py

Needs `pip install gguf numpy` (written with gguf 0.19.0, numpy 2.4). Everything
is produced by the reference implementation, the `gguf` Python package of
llama.cpp:

  reference.gguf          GGUFWriter: metadata of every value type (scalars,
                          strings, typed arrays, nested arrays), tensors of
                          F32, F16, BF16, Q8_0, Q4_0, Q4_1 (random blocks) and
                          two types Heed parses but does not dequantise.
  aligned64.gguf          the same writer with general.alignment = 64.
  gguf_expected.json      what gguf.GGUFReader reads from both files, and
                          gguf.quants.dequantize of every tensor as f32 bit
                          patterns; ggml's block table (GGML_QUANT_SIZES).
  smollm2_expected.json   (only when models/ was fetched) tensor descriptions
                          of the real SmolLM2 file and checksums of dequantised
                          tensors, so the test can check the 98 MB file without
                          committing it.

Random blocks are raw random bytes (so scales include ±0, subnormals, ±inf and
NaN) mixed with blocks gguf.quants.quantize made from Gaussian data.
"""
import json
import pathlib
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SMOLLM = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

rng = np.random.default_rng(20240605)

SPECIAL_HALVES = [0x0000, 0x8000, 0x0001, 0x83FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF,
                  0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01, 0x2E66, 0x1400]


def random_blocks(qtype: Q, count: int) -> np.ndarray:
    """`count` blocks: half raw random bytes (special scales forced into some), half quantised Gaussians."""
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(count, block_bytes), dtype=np.uint8)
    # force special f16 scales (and Q4_1 minimums) into the first blocks
    for i, half in enumerate(SPECIAL_HALVES[: count // 2]):
        raw[i, 0:2] = np.frombuffer(struct.pack("<H", half), dtype=np.uint8)
        if qtype == Q.Q4_1:
            other = SPECIAL_HALVES[(i * 7 + 3) % len(SPECIAL_HALVES)]
            raw[i, 2:4] = np.frombuffer(struct.pack("<H", other), dtype=np.uint8)
    gaussian = (rng.standard_normal((count - count // 2) * block_elems) * rng.uniform(0.01, 3.0)).astype(np.float32)
    quantised = gguf.quants.quantize(gaussian.reshape(-1, block_elems), qtype).reshape(-1, block_bytes)
    return np.concatenate([raw[: count // 2], quantised]).astype(np.uint8)


def f32_bits(values: np.ndarray) -> list[int]:
    return [int(v) for v in np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).reshape(-1)]


def tensors_for(prefix: str):
    """(name, numpy array as GGUFWriter takes it, raw_dtype or None)."""
    out = []
    # Quantised: rows of 64 elements (2 blocks), 8 rows.
    for qtype in (Q.Q8_0, Q.Q4_0, Q.Q4_1):
        blocks = random_blocks(qtype, 16)
        out.append((f"{prefix}{qtype.name.lower()}", blocks.reshape(8, -1), qtype))
    out.append((f"{prefix}f32", rng.standard_normal((3, 5)).astype(np.float32), None))
    halves = rng.integers(0, 1 << 16, size=(4, 6), dtype=np.uint16)
    halves.reshape(-1)[: len(SPECIAL_HALVES)] = SPECIAL_HALVES
    out.append((f"{prefix}f16", halves.view(np.float16), None))
    bf = rng.integers(0, 1 << 16, size=(2, 7), dtype=np.uint16)
    out.append((f"{prefix}bf16", bf.view(np.uint8).reshape(2, 14), Q.BF16))
    out.append((f"{prefix}vector", np.arange(7, dtype=np.float32) - 3, None))
    out.append((f"{prefix}empty", np.zeros((0, 4), dtype=np.float32), None))
    out.append((f"{prefix}i32", np.array([1, -2, 2147483647], dtype=np.int32), None))   # parsed, not dequantised
    out.append((f"{prefix}q5_0", random_blocks(Q.Q5_0, 2).reshape(1, -1), Q.Q5_0))    # parsed, not dequantised
    return out


def write(path: pathlib.Path, alignment: int | None, prefix: str):
    writer = gguf.GGUFWriter(str(path), arch="heedtest")
    if alignment is not None:
        writer.add_custom_alignment(alignment)
    writer.add_uint8("test.u8", 200)
    writer.add_int8("test.i8", -100)
    writer.add_uint16("test.u16", 60000)
    writer.add_int16("test.i16", -30000)
    writer.add_uint32("test.u32", 4000000000)
    writer.add_int32("test.i32", -2000000000)
    writer.add_float32("test.f32", 0.1)
    writer.add_uint64("test.u64", 18446744073709551615)
    writer.add_int64("test.i64", -9223372036854775808)
    writer.add_float64("test.f64", -2.5e-300)
    writer.add_bool("test.true", True)
    writer.add_bool("test.false", False)
    writer.add_string("test.string", "héllo, 世界 🙂")
    writer.add_string("test.empty", "")
    writer.add_key_value("test.array.u8", [0, 1, 255], V.ARRAY, sub_type=V.UINT8)
    writer.add_key_value("test.array.i8", [-128, 0, 127], V.ARRAY, sub_type=V.INT8)
    writer.add_key_value("test.array.u16", [0, 65535], V.ARRAY, sub_type=V.UINT16)
    writer.add_key_value("test.array.i16", [-32768, 32767], V.ARRAY, sub_type=V.INT16)
    writer.add_key_value("test.array.u32", [0, 4294967295], V.ARRAY, sub_type=V.UINT32)
    writer.add_key_value("test.array.i32", [-2147483648, 7], V.ARRAY, sub_type=V.INT32)
    writer.add_key_value("test.array.f32", [1.5, -0.0, 3.4028234663852886e38], V.ARRAY, sub_type=V.FLOAT32)
    writer.add_key_value("test.array.u64", [0, 18446744073709551615], V.ARRAY, sub_type=V.UINT64)
    writer.add_key_value("test.array.i64", [-9223372036854775808, 9223372036854775807], V.ARRAY, sub_type=V.INT64)
    writer.add_key_value("test.array.f64", [1e-310, -1.0], V.ARRAY, sub_type=V.FLOAT64)
    writer.add_key_value("test.array.bool", [True, False, True], V.ARRAY, sub_type=V.BOOL)
    writer.add_array("test.array.string", ["a", "", "ü", "Ġthe"])
    writer.add_array("test.array.nested", [[1, 2], [3], ["x", "y"], [[4.5], [True]]])
    for name, array, raw_dtype in tensors_for(prefix):
        writer.add_tensor(name, array, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def describe_value(field) -> dict:
    """A field as GGUFReader reads it: {"type": ..., "value": ...}; floats as bit patterns."""
    vtype = field.types[0]
    if vtype == V.ARRAY:
        return {"type": "ARRAY", "value": decode_array(field)}   # GGUFReader flattens nesting; re-read parts
    part = field.parts[field.data[0]]
    if vtype == V.STRING:
        return {"type": "STRING", "value": bytes(part).decode("utf-8")}
    value = part[0]
    if vtype == V.FLOAT32:
        value = int(np.asarray(value, dtype=np.float32).view(np.uint32))
    elif vtype == V.FLOAT64:
        value = int(np.asarray(value, dtype=np.float64).view(np.uint64))
    elif vtype == V.BOOL:
        value = bool(value)
    else:
        value = int(value)
    return {"type": vtype.name, "value": value}


def decode_array(field):
    """Decodes an array field from GGUFReader's parts: [key_len, key, type, (sub_type, count, items...)]."""
    parts = field.parts
    position = 3  # after key length, key, value type

    def read_array():
        nonlocal position
        sub_type = V(int(parts[position][0]))
        count = int(parts[position + 1][0])
        position += 2
        items = []
        for _ in range(count):
            if sub_type == V.ARRAY:
                items.append(read_array())
            elif sub_type == V.STRING:
                position += 1  # length
                items.append(bytes(parts[position]).decode("utf-8"))
                position += 1
            else:
                value = parts[position][0]
                position += 1
                if sub_type == V.FLOAT32:
                    items.append(int(np.asarray(value, dtype=np.float32).view(np.uint32)))
                elif sub_type == V.FLOAT64:
                    items.append(int(np.asarray(value, dtype=np.float64).view(np.uint64)))
                elif sub_type == V.BOOL:
                    items.append(bool(value))
                else:
                    items.append(int(value))
        return {"elementType": sub_type.name, "items": items}

    return read_array()


def read_back(path: pathlib.Path) -> dict:
    reader = gguf.GGUFReader(str(path))
    metadata = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        metadata[key] = describe_value(field)
    tensors = []
    data_start = min(t.data_offset for t in reader.tensors)
    for t in reader.tensors:
        entry = {
            "name": t.name,
            "type": t.tensor_type.name,
            "dimensions": [int(d) for d in t.shape],
            "absoluteOffset": int(t.data_offset),
            "byteCount": int(t.n_bytes),
        }
        if t.tensor_type in (Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1):
            values = gguf.quants.dequantize(np.asarray(t.data).reshape(-1).view(np.uint8)
                                            if t.tensor_type not in (Q.F32, Q.F16) else np.asarray(t.data), t.tensor_type)
            entry["f32Bits"] = f32_bits(np.asarray(values, dtype=np.float32))
        tensors.append(entry)
    return {"version": int(reader.fields["GGUF.version"].parts[-1][0]), "alignment": int(reader.alignment),
            "metadataKeys": [k for k in reader.fields if not k.startswith("GGUF.")],
            "metadata": metadata, "tensors": tensors, "fileSize": path.stat().st_size, "firstDataOffset": data_start}


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for chunk_start in range(0, len(data), 1 << 20):   # plain loop, chunked only for memory
        for byte in data[chunk_start:chunk_start + (1 << 20)]:
            h ^= byte
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def fnv1a64_f32(values: np.ndarray) -> str:
    """FNV-1a 64 over the little-endian bytes of the f32 values (as Heed's test computes it)."""
    return "%016x" % fnv1a64(np.ascontiguousarray(values, dtype="<f4").tobytes())


def smollm_expected() -> dict:
    reader = gguf.GGUFReader(str(SMOLLM))
    tensors = [{"name": t.name, "type": t.tensor_type.name, "dimensions": [int(d) for d in t.shape],
                "absoluteOffset": int(t.data_offset), "byteCount": int(t.n_bytes)} for t in reader.tensors]
    checks = []
    by_name = {t.name: t for t in reader.tensors}
    # Whole small tensors, and row slices of the 49152 x 576 Q8_0 embedding.
    for name, rows in [("blk.0.attn_k.weight", None), ("blk.29.ffn_down.weight", None), ("blk.0.attn_norm.weight", None),
                       ("output_norm.weight", None), ("token_embd.weight", (0, 64)),
                       ("token_embd.weight", (24576, 24640)), ("token_embd.weight", (49088, 49152))]:
        t = by_name[name]
        values = gguf.quants.dequantize(np.asarray(t.data).view(np.uint8) if t.tensor_type != Q.F32 else np.asarray(t.data),
                                        t.tensor_type).reshape(-1, int(t.shape[0]))
        if rows is not None:
            values = values[rows[0]:rows[1]]
        flat = np.asarray(values, dtype=np.float32).reshape(-1)
        checks.append({"name": name, "type": t.tensor_type.name, "rows": list(rows) if rows else None,
                       "count": int(flat.size), "fnv1a64": fnv1a64_f32(flat),
                       "first": f32_bits(flat[:8]), "last": f32_bits(flat[-8:]),
                       "sum": float(np.sum(flat, dtype=np.float64))})
    tokens = reader.fields["tokenizer.ggml.tokens"]
    merges = reader.fields["tokenizer.ggml.merges"]
    return {"version": int(reader.fields["GGUF.version"].parts[-1][0]), "alignment": int(reader.alignment),
            "metadataCount": len([k for k in reader.fields if not k.startswith("GGUF.")]),
            "tokenCount": len(tokens.data), "mergeCount": len(merges.data),
            "pre": reader.fields["tokenizer.ggml.pre"].contents(),
            "tensors": tensors, "dequantized": checks}


def main():
    files = {}
    for name, alignment, prefix in [("reference.gguf", None, "t."), ("aligned64.gguf", 64, "a.")]:
        path = HERE / name
        write(path, alignment, prefix)
        files[name] = read_back(path)
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")
    expected = {"gguf": gguf.__name__ + " " + getattr(gguf, "__version__", "0.19.0"),
                "quantSizes": {t.name: list(gguf.GGML_QUANT_SIZES[t]) for t in Q},
                "typeCodes": {t.name: int(t) for t in Q},
                "files": files}
    out = HERE / "gguf_expected.json"
    out.write_text(json.dumps(expected, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes)")
    if SMOLLM.exists():
        out = HERE / "smollm2_expected.json"
        out.write_text(json.dumps(smollm_expected(), indent=None, separators=(",", ":")) + "\n")
        print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes)")
    else:
        print(f"{SMOLLM} missing (run scripts/fetch-models.sh): smollm2_expected.json not rewritten", file=sys.stderr)


if __name__ == "__main__":
    main()
