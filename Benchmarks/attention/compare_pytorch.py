#!/usr/bin/env python3
"""Heed attention against PyTorch, side by side in one session.

Two modes:

  attention  PyTorch's torch.nn.functional.scaled_dot_product_attention (f32,
             CPU, torch.set_num_threads(2)) and `heed bench attention --json`
             on the same shapes (B=1, H=8, D=64 by default; causal through
             is_causal, which equals Heed's causal pattern when Tq = Tk), forward
             and forward+backward. The two sides alternate: in every round each
             length is measured by Heed then PyTorch, or PyTorch then Heed on
             odd rounds, so both see the same machine conditions. Each side
             reports the median of --repeats runs after --warmup untimed ones
             per round; the table shows the median over rounds and their ratio,
             then the ratios of the two sides within each round (measured
             seconds apart): their median and range, which show how much the
             machine's speed moved during the run. --isa avx2 keeps
             both sides off AVX-512 (a stand-in for CPUs without it).

  linear     `heed bench linear --json` (Performer, elu+1 linear attention,
             RFA; causal and not) over doubling lengths, and the growth of
             time from L/2 to L: linear time means about 2 (target <= 2.2).
             Each time is the median over rounds; the last column gives
             each round's largest step from that round's own times.
             PyTorch has no such engines; this mode does not import torch.

FLOP conventions are those of `heed bench attention --help` (FlashAttention-2:
forward 4*B*H*L^2*D, half when causal; forward+backward 3.5x forward) and
`heed bench linear --help`.

The PyTorch side needs a Python with torch (e.g. /work/venv-torch/bin/python);
nothing in the Swift package needs Python. Build Heed first:

    swift build -c release
    /work/venv-torch/bin/python Benchmarks/attention/compare_pytorch.py attention --heed .build/release/heed
    /work/venv-torch/bin/python Benchmarks/attention/compare_pytorch.py linear --heed .build/release/heed
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

PASSES = ("forward", "forward+backward")


def attention_flops(batch, heads, length, head_dimension, causal, pass_name):
    """4*B*H*L^2*D, halved when causal; x3.5 with the backward (FlashAttention-2)."""
    forward = 4.0 * batch * heads * length * length * head_dimension * (0.5 if causal else 1.0)
    return forward if pass_name == "forward" else 3.5 * forward


def milliseconds_text(value):
    """Four significant digits, never in exponent form: 41.73, 0.5234, 15620."""
    if value >= 1000:
        return f"{value:.0f}"
    digits = 3 - math.floor(math.log10(value)) if value > 0 else 1
    return f"{value:.{max(0, digits)}f}"


def lengths_argument(text):
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of whole numbers")
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"lengths must be >= 1, got '{text}'")
    return values


def paired_ratios_text(heed_times, torch_times):
    """The ratios of each round's two measurements, taken seconds apart under the
    same machine conditions: their median and range, e.g. "0.78 (0.76–0.83)"."""
    ratios = [heed / torch for heed, torch in zip(heed_times, torch_times)]
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"


def run_heed(arguments):
    """Runs heed with --json; returns its records (stderr notes pass through)."""
    completed = subprocess.run(arguments, capture_output=True, text=True)
    if completed.stderr.strip():
        sys.stderr.write(completed.stderr)
    if completed.returncode != 0:
        sys.exit(f"{' '.join(arguments)} failed with status {completed.returncode}")
    return [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]


class TorchAttention:
    """Times F.scaled_dot_product_attention the way `heed bench attention` times Heed."""

    def __init__(self, batch, heads, head_dimension, threads):
        import torch
        import torch.nn.functional as functional

        torch.set_num_threads(threads)
        self.torch, self.functional = torch, functional
        self.shape = (batch, heads, head_dimension)

    def measure(self, length, causal, pass_name, warmup, repeats):
        torch = self.torch
        batch, heads, head_dimension = self.shape
        generator = torch.Generator().manual_seed(length)
        inputs = [torch.randn(batch, heads, length, head_dimension, generator=generator) for _ in range(4)]
        query, key, value, seed = inputs

        if pass_name == "forward":
            def body():
                with torch.no_grad():
                    self.functional.scaled_dot_product_attention(query, key, value, is_causal=causal)
        else:
            for tensor in (query, key, value):
                tensor.requires_grad_(True)

            def body():
                for tensor in (query, key, value):
                    tensor.grad = None
                out = self.functional.scaled_dot_product_attention(query, key, value, is_causal=causal)
                out.backward(seed)

        for _ in range(warmup):
            body()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            body()
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)


def describe_machine(threads=None):
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    torch_threads = f"; PyTorch threads {threads}" if threads else ""
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load:.2f} at the start{torch_threads}")


# What --isa avx2 sets before torch is imported (each library reads its variable once, at load).
PYTORCH_AVX2_ENVIRONMENT = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def compare_attention(options):
    if options.isa == "avx2":
        os.environ.update(PYTORCH_AVX2_ENVIRONMENT)
    torch_side = TorchAttention(options.batch, options.heads, options.head_dimension, options.threads)
    capability = torch_side.torch.backends.cpu.get_cpu_capability()
    print(f"PyTorch {torch_side.torch.__version__} ({capability} kernels), heed {options.heed} "
          f"(--engine {options.engine}, --kernels {'avx2' if options.isa == 'avx2' else 'automatic'})")
    describe_machine(options.threads)
    heed_samples, torch_samples = {}, {}
    heed_arguments = [options.heed, "bench", "attention", "--json", "--engine", options.engine,
                      "--heads", str(options.heads), "--head-dimension", str(options.head_dimension),
                      "--batch", str(options.batch), "--repeats", str(options.repeats), "--warmup", str(options.warmup),
                      "--kernels", "avx2" if options.isa == "avx2" else "automatic"]
    if options.dense_limit_mib is not None:
        heed_arguments += ["--dense-limit-mib", str(options.dense_limit_mib)]
    started = time.time()
    for round_index in range(options.rounds):
        for length in options.lengths:
            def heed():
                for record in run_heed(heed_arguments + ["--lengths", str(length)]):
                    key = (record["L"], record["causal"], record["pass"])
                    heed_samples.setdefault(key, []).append(record["ms"])

            def pytorch():
                for causal in (False, True):
                    for pass_name in PASSES:
                        milliseconds = torch_side.measure(length, causal, pass_name, options.warmup, options.repeats)
                        torch_samples.setdefault((length, causal, pass_name), []).append(milliseconds)

            for side in ((heed, pytorch) if round_index % 2 == 0 else (pytorch, heed)):
                side()
            sys.stderr.write(f"round {round_index + 1}/{options.rounds}, L={length} done ({time.time() - started:.0f} s)\n")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{options.rounds} round(s), each side median of {options.repeats} after {options.warmup} warm-up per round; "
          f"median over rounds below, then the per-round ratios; load average at the end {load:.2f}\n")
    print("| L | causal | pass | Heed ms | PyTorch ms | Heed / PyTorch | per round: median (range) | Heed GFLOP/s | PyTorch GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for length in options.lengths:
        for causal in (False, True):
            for pass_name in PASSES:
                key = (length, causal, pass_name)
                flops = attention_flops(options.batch, options.heads, length, options.head_dimension, causal, pass_name)
                torch_ms = statistics.median(torch_samples[key])
                heed_ms = statistics.median(heed_samples[key]) if key in heed_samples else None
                heed_cells = (milliseconds_text(heed_ms), f"{heed_ms / torch_ms:.2f}", paired_ratios_text(heed_samples[key], torch_samples[key]),
                              f"{flops / heed_ms / 1e6:.1f}") if heed_ms else ("skipped", "–", "–", "–")
                print(f"| {length} | {'yes' if causal else 'no'} | {pass_name} | {heed_cells[0]} | {milliseconds_text(torch_ms)} | "
                      f"{heed_cells[1]} | {heed_cells[2]} | {heed_cells[3]} | {flops / torch_ms / 1e6:.1f} |")


def compare_linear(options):
    describe_machine()
    arguments = [options.heed, "bench", "linear", "--json", "--lengths", ",".join(map(str, options.lengths)),
                 "--engines", options.engines, "--passes", options.passes,
                 "--repeats", str(options.repeats), "--warmup", str(options.warmup), "--min-time-ms", str(options.min_time_ms)]
    samples = {}
    records = []
    for round_index in range(options.rounds):
        for record in run_heed(arguments):
            key = (record["engine"], record["causal"], record["pass"], record["L"])
            samples.setdefault(key, []).append(record["ms"])
            records.append(dict(record, round=round_index + 1))
        sys.stderr.write(f"round {round_index + 1}/{options.rounds} done\n")
    if options.samples:
        with open(options.samples + ".tmp", "w") as file:
            file.writelines(json.dumps(record) + "\n" for record in records)
        os.replace(options.samples + ".tmp", options.samples)
    print(f"heed bench linear, {options.rounds} round(s) of median of "
          f">= {options.repeats} runs and >= {options.min_time_ms} ms after {options.warmup} warm-up\n")
    print("| engine | causal | pass | " + " | ".join(f"L={length} ms" for length in options.lengths)
          + " | largest t(L)/t(L/2) | largest step in each round |")
    print("|---|---|---|" + "---|" * len(options.lengths) + "---|---|")
    series = sorted({key[:3] for key in samples}, key=lambda key: (options.engines.split(",").index(key[0]), key[1], key[2]))
    for engine, causal, pass_name in series:
        times = {length: statistics.median(samples[(engine, causal, pass_name, length)]) for length in options.lengths
                 if (engine, causal, pass_name, length) in samples}
        cells = []
        ratios = []
        for length in options.lengths:
            if length not in times:
                cells.append("–")
                continue
            ratio = times[length] / times[length // 2] if length % 2 == 0 and length // 2 in times else None
            if ratio is not None:
                ratios.append(ratio)
            cells.append(milliseconds_text(times[length]) + (f" (×{ratio:.2f})" if ratio is not None else ""))
        largest = f"{max(ratios):.2f}" if ratios else "–"
        print(f"| {engine} | {'yes' if causal else 'no'} | {pass_name} | " + " | ".join(cells) + f" | {largest} | "
              + round_steps_text(samples, (engine, causal, pass_name), options.lengths) + " |")


def round_steps_text(samples, series, lengths):
    """Each round's largest t(L)/t(L/2) of one series, from that round's own times ("2.03 / 1.98 / ...")."""
    rounds = min(len(samples[series + (length,)]) for length in lengths if series + (length,) in samples)
    largest = []
    for round_index in range(rounds):
        steps = [samples[series + (length,)][round_index] / samples[series + (length // 2,)][round_index]
                 for length in lengths
                 if length % 2 == 0 and series + (length,) in samples and series + (length // 2,) in samples]
        if steps:
            largest.append(f"{max(steps):.2f}")
    return " / ".join(largest) if largest else "–"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    for name in ("attention", "linear"):
        mode = modes.add_parser(name)
        mode.add_argument("--heed", required=True, help="path to the release heed binary (swift build -c release)")
        mode.add_argument("--repeats", type=int, default=3, help="timed runs per measurement and side (median)")
        mode.add_argument("--warmup", type=int, default=1, help="untimed runs before them")
        mode.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    attention = modes.choices["attention"]
    attention.add_argument("--lengths", type=lengths_argument, default=[512, 1024, 2048, 4096, 8192])
    attention.add_argument("--heads", type=int, default=8)
    attention.add_argument("--head-dimension", type=int, default=64)
    attention.add_argument("--batch", type=int, default=1)
    attention.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    attention.add_argument("--engine", default="automatic", choices=["automatic", "dense", "flash"])
    attention.add_argument("--dense-limit-mib", type=int, default=None, help="passed to heed bench attention")
    attention.add_argument("--isa", default="native", choices=["native", "avx2"],
                           help="avx2: both sides without AVX-512 (heed --kernels avx2; PyTorch through "
                                "ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA and MKL_ENABLE_INSTRUCTIONS), "
                                "to see how a CPU without AVX-512 would compare")
    linear = modes.choices["linear"]
    linear.add_argument("--lengths", type=lengths_argument, default=[1 << n for n in range(10, 17)])
    linear.add_argument("--engines", default="performer,elu,rfa")
    linear.add_argument("--passes", default="forward", help="forward and/or forward+backward, comma-separated")
    linear.add_argument("--min-time-ms", type=int, default=250, help="least total time of the timed runs per measurement")
    linear.add_argument("--samples", help="also write every round's records, one JSON object per line, to this file")
    options = parser.parse_args()
    if not os.access(options.heed, os.X_OK):
        parser.error(f"--heed {options.heed} is not an executable (build with: swift build -c release)")
    if min(options.repeats, options.rounds) < 1 or options.warmup < 0:
        parser.error("--repeats and --rounds must be >= 1, --warmup >= 0")
    compare_attention(options) if options.mode == "attention" else compare_linear(options)


if __name__ == "__main__":
    main()
