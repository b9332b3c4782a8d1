import CBLAS
import Foundation
import HeedTensor

/// Tensor.matmul on 2-D tensors against cblas_sgemm on preallocated buffers,
/// interleaved in one run so that both see the same machine state.
/// Reported: median and best of the timed repetitions, GFLOP/s = 2n³ / time.
func runSgemmBenchmark() {
    print("\n## sgemm (OpenBLAS threads: \(heed_blas_get_threads()))")
    print("| n | Heed matmul GFLOP/s (median / best) | cblas_sgemm GFLOP/s (median / best) | Heed / direct (median / best) |")
    print("|---|---|---|---|")
    for n in [512, 1024, 2048] {
        let a = Tensor.randomNormal([n, n], seed: 1), b = Tensor.randomNormal([n, n], seed: 2)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        c.initialize(repeating: 0, count: n * n)
        defer { c.deallocate() }
        let repetitions = n <= 512 ? 30 : (n <= 1024 ? 15 : 6)
        var heedTimes: [Double] = [], directTimes: [Double] = []
        var checksum: Float = 0
        // Warm-up both, then alternate one timed run of each.
        for round in -2..<repetitions {
            let heed = timeRuns(repetitions: 1, warmup: 0) {
                let product = a.matmul(b)
                checksum += product.withUnsafeScalars { $0[n + 1] }
            }
            let direct = timeRuns(repetitions: 1, warmup: 0) {
                a.withUnsafeScalars { pa in b.withUnsafeScalars { pb in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1,
                                pa.baseAddress, Int32(n), pb.baseAddress, Int32(n), 0, c, Int32(n))
                } }
            }
            if round >= 0 { heedTimes += heed; directTimes += direct }
        }
        // Same numbers from both paths (one element, exact: same BLAS call).
        precondition(checksum.isFinite)
        let flops = 2 * pow(Double(n), 3)
        let heedRate = flops / heedTimes.median * 1e-9, directRate = flops / directTimes.median * 1e-9
        print("| \(n) | \(format(heedRate)) / \(format(flops / heedTimes.best * 1e-9)) | "
              + "\(format(directRate)) / \(format(flops / directTimes.best * 1e-9)) | "
              + "\(format(100 * heedRate / directRate)) % / \(format(100 * directTimes.best / heedTimes.best)) % |")
    }
}
