#!/usr/bin/env python3
"""SmolLM2-135M-Instruct: Heed, llama.cpp and transformers side by side, same run.

Contenders, interleaved round by round so that all see the same machine load:

  Heed        `HeedBenchmarks smollm` (build it first): the quantised path
              (weights read in place from their Q4_1/Q8_0 blocks, f32
              activations), the same with 8-bit activations in decoding steps
              (--int8-activations), and the f32 reference path.
  llama.cpp   `llama-bench -p 512 -n 128` on the same GGUF file (--llama-bench
              PATH; build it from the llama-cpp-python sdist's vendored
              llama.cpp in a scratch folder, see BENCHMARKS.md).
  transformers  the same GGUF dequantised to float32 (--transformers; needs a
              Python with torch and transformers).

Prompt processing: 512 tokens in one pass (Heed and transformers: the story
sentence repeated; llama-bench: its own random tokens). Generation: 128 greedy
tokens (Heed and transformers after a 9-token prompt, the first token excluded
as it comes with the prompt pass; llama-bench: from an empty context).

Usage (from the repository root):
  swift build -c release --product HeedBenchmarks
  python3 Benchmarks/models/compare_smollm.py --llama-bench /path/to/llama-bench [--rounds 3] [--transformers]
"""
import argparse
import json
import os
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "models")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SENTENCE = "Once upon a time, there was a little girl named Emma who loved to play in the sun. "
PP, TG = "prompt_tokens_per_second", "generation_tokens_per_second"


def heed():
    out = subprocess.run([os.path.join(ROOT, ".build", "release", "HeedBenchmarks"), "smollm", os.path.join(MODELS, GGUF)],
                         capture_output=True, text=True, check=True).stdout
    print(out.strip())
    return {row["engine"]: row for row in (json.loads(line) for line in out.splitlines() if line.startswith("{"))}


def llama_cpp(binary, threads):
    out = subprocess.run([binary, "-m", os.path.join(MODELS, GGUF), "-t", str(threads), "-p", "512", "-n", "128",
                          "-r", "3", "-o", "json"], capture_output=True, text=True, check=True).stdout
    rows = json.loads(out)
    result = {}
    for row in rows:
        key = PP if row["n_prompt"] > 0 else TG
        result[key] = row["avg_ts"]
    print(f"llama.cpp {rows[0].get('build_commit', '?')}: pp512 {result[PP]:.1f}, tg128 {result[TG]:.1f} tokens/s")
    return result


def transformers_run(threads):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(MODELS, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(MODELS, gguf_file=GGUF, dtype=torch.float32).eval()
    ids = tokenizer(SENTENCE * (512 // 10 + 1), add_special_tokens=False)["input_ids"][:512]
    prompt, short = torch.tensor([ids]), torch.tensor([ids[:9]])
    with torch.no_grad():
        model(prompt[:, :16])   # warm-up
        times = []
        for _ in range(3):
            start = time.perf_counter()
            model(prompt, logits_to_keep=1)
            times.append(time.perf_counter() - start)
        pp = 512 / sorted(times)[1]
        # Generation: time to the first token, then the 127 that follow (as Heed measures).
        kwargs = dict(do_sample=False, pad_token_id=2, attention_mask=torch.ones_like(short))
        start = time.perf_counter()
        model.generate(short, max_new_tokens=1, min_new_tokens=1, **kwargs)
        first = time.perf_counter() - start
        start = time.perf_counter()
        model.generate(short, max_new_tokens=128, min_new_tokens=128, **kwargs)
        tg = 127 / (time.perf_counter() - start - first)
    print(f"transformers f32: prompt 512: {pp:.1f} tokens/s, generate 128: {tg:.1f} tokens/s")
    return {PP: pp, TG: tg}


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--llama-bench", help="path to llama.cpp's llama-bench")
    parser.add_argument("--transformers", action="store_true", help="also run transformers (f32)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}, {args.threads} threads each")
    columns = {"Heed quantised": [], "Heed int8 activations": [], "Heed f32": []}
    if args.llama_bench:
        columns["llama.cpp Q4_1"] = []
    if args.transformers:
        columns["transformers f32"] = []
    for _ in range(args.rounds):
        rows = heed()
        columns["Heed quantised"].append(rows["heed-quantized"])
        columns["Heed int8 activations"].append(rows["heed-int8"])
        columns["Heed f32"].append(rows["heed-f32"])
        if args.llama_bench:
            columns["llama.cpp Q4_1"].append(llama_cpp(args.llama_bench, args.threads))
        if args.transformers:
            columns["transformers f32"].append(transformers_run(args.threads))
    print(f"\n{args.rounds} rounds, median; load average at the end {os.getloadavg()[0]:.2f}\n")
    names = list(columns)
    print("| tokens/s | " + " | ".join(names) + (" | Heed quantised / llama.cpp | Heed int8 / llama.cpp |" if args.llama_bench else " |"))
    print("|---|" + "---:|" * (len(names) + (2 if args.llama_bench else 0)))
    for label, key in (("prompt 512", PP), ("generate 128", TG)):
        values = {name: median([r[key] for r in columns[name]]) for name in names}
        line = f"| {label} | " + " | ".join(f"{values[name]:.1f}" for name in names)
        if args.llama_bench:
            reference = values["llama.cpp Q4_1"]
            line += f" | {values['Heed quantised'] / reference:.2f}× | {values['Heed int8 activations'] / reference:.2f}×"
        print(line + " |")


if __name__ == "__main__":
    main()
