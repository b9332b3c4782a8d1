import CHeedKernels
import Foundation
import HeedTensor

/// One elementwise workload, timed three ways: through the public Tensor API
/// (fresh output tensor per call, split over the cores by HeedTensor), and the
/// bare kernel into a preallocated buffer on one thread and on all cores.
private struct Workload {
    let name: String
    /// Bytes read + written per element (4 per float operand).
    let bytesPerElement: Int
    let tensorAPI: (() -> Void)?
    let kernel: (Range<Int>) -> Void
}

private func gigabytesPerSecond(_ seconds: Double, _ elements: Int, _ bytesPerElement: Int) -> Double {
    Double(elements * bytesPerElement) / seconds * 1e-9
}

/// Times `body` under the dispatched and the portable kernels, alternating
/// one run of each so that both see the same machine (the cores are shared).
private func alternating(repetitions: Int, _ body: () -> Void) -> (dispatched: [Double], portable: [Double]) {
    var times: [[Double]] = [[], []]
    for round in -2..<repetitions {
        for portable in [0, 1] {
            heed_kernels_force_portable(Int32(portable))
            let t = timeRuns(repetitions: 1, warmup: 0, body)
            if round >= 0 { times[portable] += t }
        }
    }
    heed_kernels_force_portable(0)
    return (times[0], times[1])
}

/// GB/s (bytes read + written, logical: each input read once, each output
/// written once) of exp, add and softmax on 16M floats: median / best of 20
/// runs, dispatched and portable runs interleaved.
func runElementwiseBenchmark() {
    let n = 1 << 24, columns = 1024
    let x = Tensor.randomNormal([n], seed: 3), y = Tensor.randomNormal([n], seed: 4)
    let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
    out.initialize(repeating: 0, count: n)
    defer { out.deallocate() }
    let px = x.withUnsafeScalars { $0.baseAddress! }, py = y.withUnsafeScalars { $0.baseAddress! }
    let workloads = [
        Workload(name: "exp", bytesPerElement: 8, tensorAPI: { _ = x.exp() }) { r in
            heed_unary_f32(HEED_EXP, px + r.lowerBound, out + r.lowerBound, Int64(r.count))
        },
        Workload(name: "add", bytesPerElement: 12, tensorAPI: { _ = x + y }) { r in
            heed_binary_f32(HEED_ADD, px + r.lowerBound, 1, py + r.lowerBound, 1, out + r.lowerBound, Int64(r.count))
        },
        // Ranges count rows of 1024 here (see `units` below).
        Workload(name: "softmax rows of \(columns)", bytesPerElement: 8, tensorAPI: nil) { r in
            heed_softmax_rows_f32(px + r.lowerBound * columns, out + r.lowerBound * columns, Int64(r.count), Int64(columns))
        },
    ]
    let isa = String(cString: heed_kernels_isa())
    print("\n## Elementwise, \(n) floats (GB/s = bytes read + written / time; median / best of 20)")
    print("| op | kernels | Tensor API (new output, all cores) | kernel, preallocated, 1 thread | kernel, preallocated, \(cores) threads |")
    print("|---|---|---|---|---|")
    var ratios: [String] = []
    for workload in workloads {
        let units = workload.name.hasPrefix("softmax") ? n / columns : n
        let api = workload.tensorAPI.map { alternating(repetitions: 20, $0) }
        let single = alternating(repetitions: 20) { workload.kernel(0..<units) }
        let parallel = alternating(repetitions: 20) { concurrentChunks(units, parts: cores, workload.kernel) }
        func cell(_ times: [Double]?) -> String {
            guard let times else { return "—" }
            return "\(format(gigabytesPerSecond(times.median, n, workload.bytesPerElement))) / "
                + format(gigabytesPerSecond(times.best, n, workload.bytesPerElement))
        }
        print("| \(workload.name) | \(isa) | \(cell(api?.dispatched)) | \(cell(single.dispatched)) | \(cell(parallel.dispatched)) |")
        print("| \(workload.name) | portable | \(cell(api?.portable)) | \(cell(single.portable)) | \(cell(parallel.portable)) |")
        ratios.append("\(workload.name): \(isa) / portable = \(format(parallel.portable.median / parallel.dispatched.median, 2))× "
                      + "(kernel, \(cores) threads, medians)")
    }
    ratios.forEach { print($0) }
}

/// GB/s of exp and add over sizes: the kernel on 1 thread, the kernel split
/// over all cores, and the Tensor API (whose split is Parallel.forEachChunk's).
/// Best-of rather than median: the question is what each split can reach, and
/// on a shared machine the median mostly measures the neighbours.
func runScalingBenchmark() {
    print("\n## Scaling over sizes (\(String(cString: heed_kernels_isa())), GB/s, best of 9–2000 runs)")
    print("| elements | exp 1 thread | exp \(cores) threads | exp Tensor API | add 1 thread | add \(cores) threads | add Tensor API |")
    print("|---|---|---|---|---|---|---|")
    for exponent in stride(from: 12, through: 24, by: 2) {
        let n = 1 << exponent
        let x = Tensor.randomNormal([n], seed: 5), y = Tensor.randomNormal([n], seed: 6)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
        out.initialize(repeating: 0, count: n)
        defer { out.deallocate() }
        let px = x.withUnsafeScalars { $0.baseAddress! }, py = y.withUnsafeScalars { $0.baseAddress! }
        let repetitions = Swift.min(2000, Swift.max(9, (1 << 26) / n))
        func rate(_ bytes: Int, _ body: () -> Void) -> String {
            format(gigabytesPerSecond(timeRuns(repetitions: repetitions, warmup: 3, body).best, n, bytes))
        }
        let exp: (Range<Int>) -> Void = { r in heed_unary_f32(HEED_EXP, px + r.lowerBound, out + r.lowerBound, Int64(r.count)) }
        let add: (Range<Int>) -> Void = { r in
            heed_binary_f32(HEED_ADD, px + r.lowerBound, 1, py + r.lowerBound, 1, out + r.lowerBound, Int64(r.count))
        }
        print("| \(n) | \(rate(8) { exp(0..<n) }) | \(rate(8) { concurrentChunks(n, parts: cores, exp) }) | \(rate(8) { _ = x.exp() }) "
              + "| \(rate(12) { add(0..<n) }) | \(rate(12) { concurrentChunks(n, parts: cores, add) }) | \(rate(12) { _ = x + y }) |")
    }
}
