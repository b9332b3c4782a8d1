#!/usr/bin/env python3
"""SmolLM2-135M-Instruct: Heed (f32 weights) and transformers (f32) side by side, same run.

Runs `swift run -c release HeedBenchmarks smollm` (build it first), then
transformers on the same GGUF file, dequantised to float32, on the same
512 prompt tokens (prompt processing: one forward pass) and 128 greedy tokens
(generation with the KV cache). Prints a table with ratios.

Usage (from the repository root):
  swift build -c release --product HeedBenchmarks
  /work/venv-torch/bin/python Benchmarks/models/compare_smollm.py [--threads N] [--rounds R]
"""
import argparse
import json
import os
import subprocess
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "models")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SENTENCE = "Once upon a time, there was a little girl named Emma who loved to play in the sun. "


def heed(rounds):
    results = []
    for _ in range(rounds):
        out = subprocess.run([os.path.join(ROOT, ".build", "release", "HeedBenchmarks"), "smollm",
                              os.path.join(MODELS, GGUF)], capture_output=True, text=True, check=True).stdout
        print(out.strip())
        results.append(json.loads([line for line in out.splitlines() if line.startswith("{")][-1]))
    return results


def transformers_run(rounds):
    tokenizer = AutoTokenizer.from_pretrained(MODELS, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(MODELS, gguf_file=GGUF, dtype=torch.float32).eval()
    ids = tokenizer(SENTENCE * (512 // 10 + 1), add_special_tokens=False)["input_ids"][:512]
    prompt = torch.tensor([ids])
    short = torch.tensor([ids[:9]])
    results = []
    with torch.no_grad():
        model(prompt[:, :16])   # warm-up
        for _ in range(rounds):
            times = []
            for _ in range(3):
                start = time.perf_counter()
                model(prompt, logits_to_keep=1)
                times.append(time.perf_counter() - start)
            pp = 512 / sorted(times)[1]
            # Generation: time to the first token, then the 127 that follow (as Heed measures).
            start = time.perf_counter()
            model.generate(short, max_new_tokens=1, min_new_tokens=1, do_sample=False, pad_token_id=2,
                           attention_mask=torch.ones_like(short))
            first = time.perf_counter() - start
            start = time.perf_counter()
            model.generate(short, max_new_tokens=128, min_new_tokens=128, do_sample=False, pad_token_id=2,
                           attention_mask=torch.ones_like(short))
            total = time.perf_counter() - start
            tg = 127 / (total - first)
            print(f"transformers f32: prompt 512: {pp:.1f} tokens/s, generate 128: {tg:.1f} tokens/s")
            results.append({"prompt_tokens_per_second": pp, "generation_tokens_per_second": tg})
    return results


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    # Interleave: Heed, transformers, Heed, ... so both see the same machine load.
    h, t = [], []
    for _ in range(args.rounds):
        h += heed(1)
        t += transformers_run(1)
    rows = [("prompt 512 tokens", "prompt_tokens_per_second"), ("generate 128 tokens", "generation_tokens_per_second")]
    print("\n| | Heed f32 (tokens/s) | transformers f32 (tokens/s) | Heed / transformers |")
    print("|---|---:|---:|---:|")
    for label, key in rows:
        a, b = median([r[key] for r in h]), median([r[key] for r in t])
        print(f"| {label} | {a:.1f} | {b:.1f} | {a / b:.2f}× |")


if __name__ == "__main__":
    main()
