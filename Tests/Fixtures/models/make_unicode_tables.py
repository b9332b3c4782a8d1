#!/usr/bin/env python3
"""Generates the Unicode tables Heed's tokenizers use, from the behaviour of the
reference implementation itself (Hugging Face `tokenizers`), and block
checksums that let a test compare Heed with it on every code point.

    python3 Tests/Fixtures/models/make_unicode_tables.py

Needs `pip install tokenizers` (written with tokenizers 0.23.3). Writes

  Sources/HeedModels/Tokenizers/UnicodeTables.swift
  Tests/Fixtures/models/unicode_blocks.json

Why tables, and not Swift's own Unicode properties: `tokenizers` mixes Unicode
versions. BertNormalizer and BertPreTokenizer classify control characters,
punctuation and non-spacing marks with the `unicode_categories` crate (an old
Unicode version: U+0890 is not a control character there, U+2E43 is not
punctuation, U+0898 is not a mark); the byte-level pre-tokenizer's regex runs
in Oniguruma (its own Unicode version, older than Swift 6.3's 17.0); lower-
casing and `char::is_whitespace` / `is_numeric` come from Rust's standard
library. Each class below is measured by asking `tokenizers` about every code
point, so Heed classifies exactly as the reference does. Lowercasing and NFD
are Swift's (Unicode 17), which agree with the reference on every code point
but one (U+11938, which the reference's NFD leaves whole; UnicodeTables.swift
lists it), as the block checksums confirm.

Block checksums: for each block of 4096 code points, FNV-1a 64 over the UTF-8
of the pieces (joined by U+0001) that each pipeline makes of a string built
from every code point of the block:
  bert           BertNormalizer(lowercase, strip accents, Chinese chars, clean
                 text) + BertPreTokenizer on  "x" + c  for every c;
  byteLevel      ByteLevel(add_prefix_space=False) on  c + " " + c + c + "x1" + c + "'s" + c;
  digitsByteLevel Sequence[Digits(individual_digits=True), ByteLevel] on the same.
"""
import json
import pathlib

import tokenizers
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer, ByteLevel, Digits, Sequence

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SWIFT_OUT = ROOT / "Sources" / "HeedModels" / "Tokenizers" / "UnicodeTables.swift"
JSON_OUT = HERE / "unicode_blocks.json"

CODE_POINTS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def ranges(members):
    """Sorted inclusive (low, high) ranges of a set of code points."""
    out = []
    for c in sorted(members):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def classes():
    clean = BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    chinese = BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    strip = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    bert_pre = BertPreTokenizer()
    byte_level = ByteLevel(add_prefix_space=False, use_regex=True)
    digits = Digits(individual_digits=True)
    tables = {name: set() for name in ["bertControl", "bertWhitespace", "bertPunctuation", "bertChinese",
                                       "bertNonspacingMark", "byteLevelLetter", "byteLevelNumber",
                                       "byteLevelWhitespace", "numeric"]}
    for c in CODE_POINTS:
        s = chr(c)
        if clean.normalize_str(s) == "":
            tables["bertControl"].add(c)
        pieces = [p for p, _ in bert_pre.pre_tokenize_str("a" + s + "b")]
        if pieces == ["a", "b"]:
            tables["bertWhitespace"].add(c)
        elif pieces == ["a", s, "b"]:
            tables["bertPunctuation"].add(c)
        if chinese.normalize_str(s) == " " + s + " ":
            tables["bertChinese"].add(c)
        if strip.normalize_str(s) == "":
            tables["bertNonspacingMark"].add(c)
        if len(byte_level.pre_tokenize_str("x" + s)) == 1:
            tables["byteLevelLetter"].add(c)
        elif len(byte_level.pre_tokenize_str("1" + s)) == 1:
            tables["byteLevelNumber"].add(c)
        elif len(byte_level.pre_tokenize_str("a" + s + s + "b")) == 4 or c == 0x20:
            tables["byteLevelWhitespace"].add(c)
        if len(digits.pre_tokenize_str("a" + s + "b")) == 3:
            tables["numeric"].add(c)
    return tables


DOCS = {
    "bertControl": "Removed by BertNormalizer's clean_text: `\\0`, U+FFFD and what the reference calls control (Cc, Cf, Co of its Unicode version, less \\t \\n \\r).",
    "bertWhitespace": "Rust's `char::is_whitespace`: BertPreTokenizer splits on these and drops them; clean_text turns them into U+0020.",
    "bertPunctuation": "BertPreTokenizer's punctuation: ASCII punctuation and the P* categories of the reference's Unicode version.",
    "bertChinese": "BertNormalizer's CJK ideograph ranges (handle_chinese_chars pads each with spaces).",
    "bertNonspacingMark": "Removed after NFD by strip_accents: Mn of the reference's Unicode version.",
    "byteLevelLetter": "`\\p{L}` in the byte-level pre-tokenizer's regex (Oniguruma's Unicode version).",
    "byteLevelNumber": "`\\p{N}` in the byte-level pre-tokenizer's regex.",
    "byteLevelWhitespace": "`\\s` in the byte-level pre-tokenizer's regex (including U+0020).",
    "numeric": "Rust's `char::is_numeric` (Nd, Nl, No): what the Digits pre-tokenizer splits off.",
}


def swift_source(tables) -> str:
    lines = [
        "// Generated by Tests/Fixtures/models/make_unicode_tables.py from the behaviour of",
        f"// Hugging Face tokenizers {tokenizers.__version__}; do not edit. See that script for why Heed",
        "// classifies characters with these tables rather than Swift's Unicode properties.",
        "",
        "/// Character classes of the reference tokenizers, as sorted inclusive ranges.",
        "enum UnicodeTables {",
    ]
    for name, members in tables.items():
        flat = [v for pair in ranges(members) for v in pair]
        lines.append(f"    /// {DOCS[name]}")
        lines.append(f"    /// {len(members)} code points in {len(flat) // 2} ranges.")
        lines.append(f"    static let {name} = CodePointSet(ranges: [")
        for i in range(0, len(flat), 12):
            lines.append("        " + ", ".join("0x%X" % v for v in flat[i:i + 12]) + ",")
        lines.append("    ])")
        lines.append("")
    lines[-1] = "}"
    return "\n".join(lines) + "\n"


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for byte in data:
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def block_checksums():
    bert_normalizer = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    bert_pre = BertPreTokenizer()
    byte_level = ByteLevel(add_prefix_space=False, use_regex=True)
    digits_byte_level = Sequence([Digits(individual_digits=True), ByteLevel(add_prefix_space=False, use_regex=True)])
    blocks = []
    for start in range(0, 0x110000, 4096):
        chars = [chr(c) for c in range(start, start + 4096) if not 0xD800 <= c <= 0xDFFF]
        bert_text = bert_normalizer.normalize_str("".join("x" + c for c in chars))
        bert = "\u0001".join(p for p, _ in bert_pre.pre_tokenize_str(bert_text))
        text = "".join(c + " " + c + c + "x1" + c + "'s" + c for c in chars)
        byte = "\u0001".join(p for p, _ in byte_level.pre_tokenize_str(text))
        digit = "\u0001".join(p for p, _ in digits_byte_level.pre_tokenize_str(text))
        blocks.append({"start": start, "bert": fnv1a64(bert.encode()), "byteLevel": fnv1a64(byte.encode()),
                       "digitsByteLevel": fnv1a64(digit.encode())})
    return blocks


def main():
    tables = classes()
    SWIFT_OUT.write_text(swift_source(tables))
    print(f"wrote {SWIFT_OUT.relative_to(ROOT)} ({SWIFT_OUT.stat().st_size} bytes)")
    JSON_OUT.write_text(json.dumps({"tokenizers": tokenizers.__version__, "blockSize": 4096,
                                    "blocks": block_checksums()}, separators=(",", ":")) + "\n")
    print(f"wrote {JSON_OUT.relative_to(ROOT)} ({JSON_OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
