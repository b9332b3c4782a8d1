// Heed's benchmark executable. Build and run in release:
//
//     swift run -c release HeedBenchmarks [sgemm|elementwise|scaling|accuracy|flash|flash-crossover|flash-memory|flash-tile|all]
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
// - flash-memory:    peak RSS of flash forward+backward at L = 32768
// - flash-tile:      one core, one tile pair: the flash steps against cblas_sgemm
// `all` runs sgemm, elementwise and scaling (accuracy takes a few minutes: ask for it).
import CHeedKernels
import Foundation

let mode = CommandLine.arguments.dropFirst().first ?? "all"
let known = ["sgemm", "elementwise", "scaling", "accuracy", "flash", "flash-crossover", "flash-memory", "flash-tile", "all"]
guard known.contains(mode) else {
    print("usage: HeedBenchmarks [\(known.joined(separator: "|"))]")
    exit(2)
}

print("Heed benchmarks — kernels: \(String(cString: heed_kernels_isa())), cores: \(ProcessInfo.processInfo.activeProcessorCount)")
if mode == "sgemm" || mode == "all" { runSgemmBenchmark() }
if mode == "elementwise" || mode == "all" { runElementwiseBenchmark() }
if mode == "scaling" || mode == "all" { runScalingBenchmark() }
if mode == "accuracy" { runAccuracySweep() }
if mode == "flash" {
    let lengths = CommandLine.arguments.dropFirst(2).first.map { $0.split(separator: ",").compactMap { Int($0) } }
    runFlashBenchmark(lengths: lengths ?? [1024, 2048, 4096])
}
if mode == "flash-crossover" { runFlashCrossover() }
if mode == "flash-memory" { runFlashMemory() }
if mode == "flash-tile" { runFlashTileBenchmark() }
