#!/usr/bin/env python3
"""all-MiniLM-L6-v2 encode throughput: sentence-transformers against Heed, in one run.

    scripts/fetch-models.sh
    swift build -c release --product HeedBenchmarks
    /work/venv-torch/bin/python Benchmarks/models/compare_minilm.py [--rounds 3]

256 sentences of about 32 tokens (seeded, written to a temporary file that both
sides read), batch 32, 2 threads on both sides (torch.set_num_threads(2);
Heed runs with its CPU affinity limited to the first N cores, which sets both
its own worker pool and OPENBLAS_NUM_THREADS); `--threads 1` compares one
thread (one core) each. The two sides
alternate, `--rounds` times, so that both see the same load on a shared
machine; each side reports the median of its timed repetitions per round.
Prints sentences/s for both and the ratio Heed / sentence-transformers, and
checks that the two sides' embeddings agree (cosine ≥ 0.99999).
"""
import argparse
import json
import os
import pathlib
import random
import resource
import statistics
import subprocess
import tempfile
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "all-MiniLM-L6-v2"
BINARY = ROOT / ".build" / "release" / "HeedBenchmarks"
HEED = ROOT / ".build" / "release" / "heed"

WORDS = ("the of and a to in is was that for on are with as his they be at one have this from or had by word but what "
         "some we can out other were all there when up use your how said an each she which do their time if will way about "
         "many then them write would like so these her long make thing see him two has look more day could go come did "
         "number sound no most people my over know water than call first who may down side been now find any new work part "
         "take get place made live where after back little only round man year came show every good me give our under name "
         "very through just form sentence great think say help low line differ turn cause much mean before move right boy "
         "old too same tell does set three want air well also play small end put home read hand port large spell add even "
         "land here must big high such follow act why ask men change went light kind off need house picture try us again "
         "animal point mother world near build self earth father head stand own page should country found answer school grow "
         "study still learn plant cover food sun four between state keep eye never last let thought city tree cross farm hard "
         "start might story saw far sea draw left late run while press close night real life few north").split()


def sentences(count=256, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(26, 32))]
        out.append(" ".join(words).capitalize() + ".")
    return out


def time_sentence_transformers(model, texts, repetitions):
    """Median sentences/s, and CPU seconds (all threads) per timed encode."""
    model.encode(texts, batch_size=32)  # warm-up
    times = []
    cpu = time.process_time()
    for _ in range(repetitions):
        start = time.perf_counter()
        model.encode(texts, batch_size=32, convert_to_numpy=True)
        times.append(time.perf_counter() - start)
    return len(texts) / statistics.median(times), (time.process_time() - cpu) / repetitions


def time_heed(path, repetitions, threads):
    """Median sentences/s, and CPU seconds per encode (the process's total, loading and warm-up included, / repetitions)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cores = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:threads])
    out = subprocess.run(["taskset", "-c", cores, str(BINARY), "minilm", str(MODEL), str(path), str(repetitions)],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": str(threads)}).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = [l for l in out.splitlines() if l.startswith("minilm_sentences_per_second")][-1]
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / repetitions
    return float(line.split()[1]), cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch.set_num_threads; Heed's cores (taskset) and OPENBLAS_NUM_THREADS (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = SentenceTransformer(str(MODEL), device="cpu")
    texts = sentences()
    lengths = [len(model.tokenizer(t)["input_ids"]) for t in texts]
    print(f"{len(texts)} sentences, {sum(lengths)} tokens (mean {statistics.mean(lengths):.1f}, "
          f"min {min(lengths)}, max {max(lengths)}), batch 32, torch {torch.__version__} with {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "sentences.txt"
        path.write_text("\n".join(texts) + "\n")
        # Agreement on a few of the sentences, through `heed embed`.
        if HEED.exists():
            lines = subprocess.run([str(HEED), "embed", "--model", str(MODEL)] + texts[:8], check=True,
                                   capture_output=True, text=True).stdout.splitlines()
            heed = np.array([json.loads(l)["embedding"] for l in lines], dtype=np.float32)
            reference = model.encode(texts[:8], batch_size=32)
            cosines = (heed * reference).sum(1) / np.linalg.norm(heed, axis=1) / np.linalg.norm(reference, axis=1)
            print(f"agreement on 8 sentences: min cosine {cosines.min():.7f}, max abs diff {np.abs(heed - reference).max():.2e}")
        st, heed = [], []
        for round in range(args.rounds):
            rate, cpu = time_sentence_transformers(model, texts, args.repetitions)
            st.append(rate)
            heed_rate, heed_cpu = time_heed(path, args.repetitions, args.threads)
            heed.append(heed_rate)
            load = open("/proc/loadavg").read().split()[0] if pathlib.Path("/proc/loadavg").exists() else "?"
            print(f"round {round + 1}: sentence-transformers {rate:.1f} sentences/s ({cpu:.2f} CPU s per encode), "
                  f"Heed {heed_rate:.1f} sentences/s ({heed_cpu:.2f} CPU s per encode, loading included), "
                  f"ratio {heed_rate / rate:.2f}; load average {load}")
    print(f"median over rounds: sentence-transformers {statistics.median(st):.1f} sentences/s, "
          f"Heed {statistics.median(heed):.1f} sentences/s, ratio {statistics.median(heed) / statistics.median(st):.2f}")


if __name__ == "__main__":
    main()
