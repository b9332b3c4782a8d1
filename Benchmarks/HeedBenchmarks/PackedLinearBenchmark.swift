import CBLAS
import CHeedKernels
import Foundation

/// heed_packed_linear_f32 (weights packed once) against cblas_sgemm (packs
/// both operands every call) on one thread, on the shapes of MiniLM's linear
/// layers for a batch of 32 sentences of ~31 tokens (1008 rows): out = x Wᵀ + b.
/// Both sides alternate, one timed call each per round; best of the rounds.
/// Every micro-kernel the CPU has runs (AVX-512 where present, AVX2, portable
/// only for the smallest shape).
func runPackedLinearBenchmark() {
    heed_blas_set_threads(1)
    print("\n## packed linear layers, one thread: out[m, n] = x[m, k] Wᵀ + b (GFLOP/s, best of 15)")
    print("| m | n | k | heed_packed_linear (ISA) | cblas_sgemm (β = 1 onto the bias) | packed / sgemm |")
    print("|---|---|---|---|---|---|")
    for (m, n, k) in [(1008, 1152, 384), (1008, 384, 384), (1008, 1536, 384), (1008, 384, 1536)] {
        let x = (0 ..< m * k).map { _ in Float.random(in: -1 ... 1) }
        let w = (0 ..< n * k).map { _ in Float.random(in: -1 ... 1) }
        let bias = (0 ..< n).map { _ in Float.random(in: -1 ... 1) }
        let packed = UnsafeMutableRawPointer.allocate(byteCount: 4 * Int(heed_packed_count(Int64(n), Int64(k))), alignment: 64)
            .assumingMemoryBound(to: Float.self)
        defer { packed.deallocate() }
        heed_pack_weights_f32(w, Int64(n), Int64(k), packed)
        var mine = [Float](repeating: 0, count: m * n), blas = mine
        let flops = 2.0 * Double(m * n * k)
        for (allow, label) in [(1, "avx512"), (0, "avx2+fma")] {
            heed_kernels_allow_avx512(Int32(allow))
            if allow == 1 && heed_kernels_avx512_active() == 0 { continue }
            var packedTimes: [Double] = [], blasTimes: [Double] = []
            for _ in 0 ..< 15 {
                packedTimes += timeRuns(repetitions: 1, warmup: 1) {
                    heed_packed_linear_f32(Int64(m), Int64(n), Int64(k), x, Int64(k), packed, bias, nil, 0, &mine, Int64(n))
                }
                blasTimes += timeRuns(repetitions: 1, warmup: 1) {
                    for row in 0 ..< m { for j in 0 ..< n { blas[row * n + j] = bias[j] } }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, x, Int32(k),
                                w, Int32(k), 1, &blas, Int32(n))
                }
            }
            var largest: Float = 0
            for i in 0 ..< m * n { largest = max(largest, abs(mine[i] - blas[i])) }
            precondition(largest < 1e-3, "packed linear disagrees with sgemm by \(largest)")
            let (a, b) = (flops / packedTimes.best * 1e-9, flops / blasTimes.best * 1e-9)
            print("| \(m) | \(n) | \(k) | \(format(a)) (\(label)) | \(format(b)) | \(format(a / b, 2)) |")
        }
        heed_kernels_allow_avx512(1)
    }
}
