// Heed's benchmark executable. Build and run in release:
//
//     swift run -c release HeedBenchmarks [sgemm|elementwise|scaling|accuracy|smollm|all]
//
// - sgemm:       Tensor.matmul against cblas_sgemm called directly, same run
// - elementwise: GB/s of exp, add and softmax rows on 16M floats, dispatched
//                (AVX2+FMA) and forced-portable kernels side by side
// - scaling:     GB/s of exp and add over sizes, 1 thread vs split over the
//                cores (the data behind Parallel.forEachChunk's threshold)
// - accuracy:    max ulp error against Foundation (double): exp on all 2^32
//                inputs, log/tanh/sigmoid/silu/erf/gelu on every 97th
// - smollm:      SmolLM2-135M prompt (512 tokens) and generation (128 tokens) tokens/s;
//                Benchmarks/models/compare_smollm.py runs transformers beside it
// `all` runs sgemm, elementwise and scaling (accuracy takes a few minutes: ask for it).
import CHeedKernels
import Foundation

let mode = CommandLine.arguments.dropFirst().first ?? "all"
let known = ["sgemm", "elementwise", "scaling", "accuracy", "smollm", "all"]
guard known.contains(mode) else {
    print("usage: HeedBenchmarks [\(known.joined(separator: "|"))]")
    exit(2)
}

print("Heed benchmarks — kernels: \(String(cString: heed_kernels_isa())), cores: \(ProcessInfo.processInfo.activeProcessorCount)")
if mode == "sgemm" || mode == "all" { runSgemmBenchmark() }
if mode == "elementwise" || mode == "all" { runElementwiseBenchmark() }
if mode == "scaling" || mode == "all" { runScalingBenchmark() }
if mode == "accuracy" { runAccuracySweep() }
if mode == "smollm" { runSmolLMBenchmark() }
