#!/usr/bin/env python3
"""Token ids and sentence embeddings of all-MiniLM-L6-v2 from sentence-transformers,
for HeedModelsTests/MiniLMTests.swift and HeedCLITests/EmbedCommandTests.swift.

    scripts/fetch-models.sh
    python3 Tests/Fixtures/models/make_minilm_fixtures.py

Needs `pip install sentence-transformers` (written with sentence-transformers
6.2.0, transformers 5.23.0, torch 2.13 CPU). Nothing is loaded from a hub: the
model is the folder scripts/fetch-models.sh unpacks into models/all-MiniLM-L6-v2,
loaded on the CPU in f32. sentence-transformers applies the modules that
modules.json declares: Transformer (max_seq_length 256 from
sentence_bert_config.json), Pooling (mean over real tokens, 1_Pooling/config.json)
and Normalize (L2).

Writes minilm_expected.json:
  max_seq_length    the truncation sentence-transformers used (256)
  inputs            the texts (accents, CJK, emoji, empty, one word, mixed case,
                    punctuation, control characters, one input between 128 and
                    256 tokens and one over 256 that is truncated)
  ids               the ids the model saw for each text, after truncation
  embeddings        the normalised embeddings, float32 written in their shortest
                    decimal form
  batch_size        the batch size the embeddings were computed with (the
                    inputs have different lengths, so padding and masks are used)
"""
import json
import pathlib

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

ROOT = pathlib.Path(__file__).resolve().parents[3]
MODEL = ROOT / "models" / "all-MiniLM-L6-v2"
OUT = pathlib.Path(__file__).resolve().parent / "minilm_expected.json"

LONG_SENTENCE = ("Attention lets every token look at every other token, weighting what it sees by relevance; "
                 "stacking such layers builds representations that capture meaning in context. ")
INPUTS = [
    "The quick brown fox jumps over the lazy dog.",
    "",
    "a",
    "Café naïve résumé — déjà vu at the Ångström Straße!",
    "東京は日本の首都です。北京欢迎你，서울도 좋아요.",
    "I love pizza 🍕🎉 and thumbs up 👍🏽, don't you?",
    "MiXeD CaSe SHOUTING and whispering, iPhone vs IPHONE",
    "Hello, world!!! (punctuation?) [brackets] {braces} -- dash; semi: colon... \"quotes\" & 100% #1 @user",
    "line one\nline two\ttabbed\u0000 null\u200b zero-width",
    "unaffable tokenization of supercalifragilisticexpialidocious antidisestablishmentarianism",
    LONG_SENTENCE * 5,   # between 128 and 256 tokens: kept whole (the model truncates at 256, not at tokenizer.json's 128)
    LONG_SENTENCE * 10,  # over 256 tokens: truncated to 256
]


def shortest(x):
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-"))


def main():
    torch.set_num_threads(2)
    model = SentenceTransformer(str(MODEL), device="cpu")
    model.eval()
    names = [type(module).__name__ for module in model]
    assert names == ["Transformer", "Pooling", "Normalize"], names
    ids = [(model.preprocess if hasattr(model, "preprocess") else model.tokenize)([text])["input_ids"][0].tolist() for text in INPUTS]
    lengths = [len(i) for i in ids]
    assert 128 < lengths[-2] < 256 and lengths[-1] == 256, lengths
    assert ids[0] == [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102]
    batch_size = 5
    with torch.no_grad():
        embeddings = model.encode(INPUTS, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=False)
    assert embeddings.dtype == np.float32
    norms = np.linalg.norm(embeddings, axis=1)
    assert np.allclose(norms, 1, atol=1e-5), norms
    print("lengths", lengths)
    print("known answer", embeddings[0][:5])
    OUT.write_text(json.dumps({
        "max_seq_length": model.max_seq_length,
        "batch_size": batch_size,
        "inputs": INPUTS,
        "ids": ids,
        "embeddings": [[shortest(x) for x in row] for row in embeddings],
    }, ensure_ascii=False) + "\n")
    print("wrote", OUT, OUT.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
