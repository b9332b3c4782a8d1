// Heed's benchmark executable. Build and run in release:
//
//     swift run -c release HeedBenchmarks [sgemm|elementwise|scaling|accuracy|flash|flash-crossover|flash-trace|flash-memory|flash-tile|packed-linear|linear|minilm|smollm|all]
//
// - sgemm:       Tensor.matmul against cblas_sgemm called directly, same run
// - elementwise: GB/s of exp, add and softmax rows on 16M floats, dispatched
//                (AVX2+FMA) and forced-portable kernels side by side
// - scaling:     GB/s of exp and add over sizes, 1 thread vs split over the
//                cores (the data behind Parallel.forEachChunk's threshold)
// - accuracy:    max ulp error against Foundation (double): exp on all 2^32
//                inputs, log/tanh/sigmoid/silu/erf/gelu on every 97th
// - flash:           flash attention forward and forward+backward, L = 1024 … 4096,
//                    causal and not (B = 1, H = 8, D = 64); `flash 512,8192` picks lengths
// - flash-crossover: dense vs flash on small problems (sets Attention.flashThreshold)
// - flash-trace:     `flash-trace [seconds] [L]`: the non-causal forward back to back
//                    (default 30 s, L = 1024), median wall and CPU time per 2 s window
// - flash-memory:    peak RSS of flash forward+backward at L = 32768
// - flash-tile:      one core, one tile pair: the flash steps against cblas_sgemm
//                    (`flash-tile avx2`: the AVX2 kernels on an AVX-512 CPU)
// - packed-linear:   one core: heed_packed_linear_f32 against cblas_sgemm on MiniLM's shapes
// - linear:      time and peak RSS of Performer, RFA and elu+1 linear attention
//                over L = 1024 … 65536, fused and reference paths (options:
//                see LinearBenchmark.swift; takes several minutes)
// - minilm:      all-MiniLM-L6-v2 sentences/s (MiniLMBenchmark.swift; needs the
//                fetched model; Benchmarks/models/compare_minilm.py runs it
//                beside sentence-transformers)
// - smollm:      SmolLM2-135M prompt (512 tokens) and generation (128 tokens) tokens/s;
//                Benchmarks/models/compare_smollm.py runs transformers beside it
// `all` runs sgemm, elementwise and scaling (the others take minutes: ask for them).
import CHeedKernels
import Foundation

let mode = CommandLine.arguments.dropFirst().first ?? "all"
let known = ["sgemm", "elementwise", "scaling", "accuracy", "flash", "flash-crossover", "flash-trace", "flash-memory", "flash-tile", "packed-linear", "linear", "minilm", "smollm", "all"]
guard known.contains(mode) else {
    print("usage: HeedBenchmarks [\(known.joined(separator: "|"))]")
    exit(2)
}

print("Heed benchmarks — kernels: \(String(cString: heed_kernels_isa())), cores: \(ProcessInfo.processInfo.activeProcessorCount)")
if mode == "sgemm" || mode == "all" { runSgemmBenchmark() }
if mode == "elementwise" || mode == "all" { runElementwiseBenchmark() }
if mode == "scaling" || mode == "all" { runScalingBenchmark() }
if mode == "accuracy" { runAccuracySweep() }
if mode == "linear" { runLinearBenchmark(Array(CommandLine.arguments.dropFirst(2))) }
if mode == "minilm" { runMiniLMBenchmark(arguments: Array(CommandLine.arguments.dropFirst(2))) }
if mode == "smollm" { runSmolLMBenchmark() }
if mode == "flash" {
    let lengths = CommandLine.arguments.dropFirst(2).first.map { $0.split(separator: ",").compactMap { Int($0) } }
    runFlashBenchmark(lengths: lengths ?? [1024, 2048, 4096])
}
if mode == "flash-crossover" { runFlashCrossover() }
if mode == "flash-trace" {
    let options = CommandLine.arguments.dropFirst(2).compactMap { Int($0) }
    runFlashTrace(seconds: Double(options.first ?? 30), length: options.dropFirst().first ?? 1024)
}
if mode == "flash-memory" { runFlashMemory() }
if mode == "flash-tile" {
    if CommandLine.arguments.dropFirst(2).first == "avx2" { heed_kernels_allow_avx512(0) }
    runFlashTileBenchmark()
}
if mode == "packed-linear" { runPackedLinearBenchmark() }
