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

/// GB/s (bytes read + written, logical: each input read once, each output
/// written once) of exp, add and softmax on 16M floats, median of 10 runs.
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
        // Ranges count rows of 1024 here (see `elements` below).
        Workload(name: "softmax rows of \(columns)", bytesPerElement: 8, tensorAPI: nil) { r in
            heed_softmax_rows_f32(px + r.lowerBound * columns, out + r.lowerBound * columns, Int64(r.count), Int64(columns))
        },
    ]
    print("\n## Elementwise, \(n) floats (GB/s = bytes read + written / time, median of 10)")
    print("| op | kernels | Tensor API (new output, all cores) | kernel, preallocated, 1 thread | kernel, preallocated, \(cores) threads |")
    print("|---|---|---|---|---|")
    var rates: [String: Double] = [:]
    for workload in workloads {
        let units = workload.name.hasPrefix("softmax") ? n / columns : n
        for portable in [false, true] {
            heed_kernels_force_portable(portable ? 1 : 0)
            let isa = String(cString: heed_kernels_isa())
            let api = workload.tensorAPI.map { body in timeRuns(repetitions: 10, body).median }
            let single = timeRuns(repetitions: 10) { workload.kernel(0..<units) }.median
            let parallel = timeRuns(repetitions: 10) { concurrentChunks(units, parts: cores, workload.kernel) }.median
            let rate = { (t: Double) in format(gigabytesPerSecond(t, n, workload.bytesPerElement)) }
            rates["\(workload.name) \(isa)"] = gigabytesPerSecond(parallel, n, workload.bytesPerElement)
            print("| \(workload.name) | \(isa) | \(api.map(rate) ?? "—") | \(rate(single)) | \(rate(parallel)) |")
        }
    }
    heed_kernels_force_portable(0)
    let isa = String(cString: heed_kernels_isa())
    for name in workloads.map(\.name) {
        if let fast = rates["\(name) \(isa)"], let slow = rates["\(name) portable"] {
            print("\(name): \(isa) / portable = \(format(fast / slow, 2))× (kernel, \(cores) threads)")
        }
    }
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
