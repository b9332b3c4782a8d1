import CBLAS
import CHeedKernels
import Foundation
import HeedAttention
import HeedTensor

// The flash attention engine: speed (`flash`), the dense/flash crossover that
// sets Attention.flashThreshold (`flash-crossover`), and peak memory at long
// sequence lengths (`flash-memory`).
//
// FLOP convention (FlashAttention-2, Dao 2023, §4): the forward counts the two
// products, 4·B·H·Tq·Tk·D (half of it under a causal pattern, whose skipped
// tiles are not computed); the backward counts 2.5× the forward, so
// forward+backward = 3.5× the forward count.

/// Forward FLOPs of one call.
func attentionFlops(batch: Int, heads: Int, length: Int, depth: Int, causal: Bool) -> Double {
    4 * Double(batch * heads) * Double(length) * Double(length) * Double(depth) * (causal ? 0.5 : 1)
}

/// B = 1, H = 8, D = 64, f32: forward and forward+backward, causal and not.
/// "GFLOP/s per core-second" divides by the CPU time of all threads: what
/// one core delivers while it runs, whatever else shares the machine (the
/// wall-clock rate is at most cores × it).
func runFlashBenchmark(lengths: [Int] = [1024, 2048, 4096]) {
    let (b, h, d) = (1, 8, 64)
    print("\n## flash attention (B = \(b), H = \(h), D = \(d), f32, kernels: \(String(cString: heed_kernels_isa())), "
          + "cores: \(ProcessInfo.processInfo.activeProcessorCount))")
    print("| L | causal | pass | ms (median) | ms (best) | GFLOP/s (median) | GFLOP/s per core-second |")
    print("|---|---|---|---|---|---|---|")
    for length in lengths {
        let q = Tensor.randomNormal([b, h, length, d], seed: 1, requiresGrad: true)
        let k = Tensor.randomNormal([b, h, length, d], seed: 2, requiresGrad: true)
        let v = Tensor.randomNormal([b, h, length, d], seed: 3, requiresGrad: true)
        let seed = Tensor.randomNormal([b, h, length, d], seed: 4)
        let repetitions = length <= 1024 ? 20 : (length <= 2048 ? 10 : 5)
        for causal in [false, true] {
            let configuration = FlashAttention.Configuration(pattern: causal ? .causal() : .full)
            let forwardStart = processCPUSeconds()
            let forward = timeRuns(repetitions: repetitions) {
                let out = Tensor.withoutGrad { FlashAttention.attention(query: q, key: k, value: v, configuration: configuration) }
                precondition(out.output.withUnsafeScalars { $0[0].isFinite })
            }
            let forwardCPU = (processCPUSeconds() - forwardStart) / Double(repetitions + 2)
            let bothStart = processCPUSeconds()
            let both = timeRuns(repetitions: repetitions) {
                let out = FlashAttention.attention(query: q, key: k, value: v, configuration: configuration)
                out.output.backward(seed)
                for t in [q, k, v] { t.grad = nil }
            }
            let bothCPU = (processCPUSeconds() - bothStart) / Double(repetitions + 2)
            let flops = attentionFlops(batch: b, heads: h, length: length, depth: d, causal: causal)
            for (pass, times, count, cpu) in [("forward", forward, flops, forwardCPU), ("forward+backward", both, 3.5 * flops, bothCPU)] {
                print("| \(length) | \(causal) | \(pass) | \(format(times.median * 1e3)) | \(format(times.best * 1e3)) | "
                      + "\(format(count / times.median * 1e-9)) | \(format(count / cpu * 1e-9)) |")
            }
        }
    }
}

/// Dense against flash on small problems through `Attention` (the path
/// `.automatic` chooses between), forward alone and forward+backward: where
/// flash starts to win.
func runFlashCrossover() {
    let (b, h, d) = (1, 8, 64)
    print("\n## dense vs flash crossover (B = \(b), H = \(h), D = \(d), through Attention, median ms)")
    print("| Tq = Tk | Tq·Tk | forward dense | forward flash | flash / dense | fwd+bwd dense | fwd+bwd flash | flash / dense |")
    print("|---|---|---|---|---|---|---|---|")
    for length in [8, 16, 32, 48, 64, 96, 128, 192, 256] {
        let q = Tensor.randomNormal([b, h, length, d], seed: 1, requiresGrad: true)
        let k = Tensor.randomNormal([b, h, length, d], seed: 2, requiresGrad: true)
        let v = Tensor.randomNormal([b, h, length, d], seed: 3, requiresGrad: true)
        func time(_ engine: Attention.Engine, backward: Bool) -> Double {
            let attention = Attention(engine: engine)
            return timeRuns(repetitions: 50, warmup: 5) {
                if backward {
                    attention(query: q, key: k, value: v).output.sum().backward()
                    for t in [q, k, v] { t.grad = nil }
                } else {
                    let out = Tensor.withoutGrad { attention(query: q, key: k, value: v).output }
                    precondition(out.count > 0)
                }
            }.median
        }
        let forward = (time(.dense, backward: false), time(.flash, backward: false))
        let both = (time(.dense, backward: true), time(.flash, backward: true))
        print("| \(length) | \(length * length) | \(format(forward.0 * 1e3, 3)) | \(format(forward.1 * 1e3, 3)) | "
              + "\(format(forward.1 / forward.0, 2)) | \(format(both.0 * 1e3, 3)) | \(format(both.1 * 1e3, 3)) | "
              + "\(format(both.1 / both.0, 2)) |")
    }
}

/// Peak resident memory (VmHWM, reset through /proc/self/clear_refs) of
/// forward+backward at a long length, minus what the call must hold anyway.
func runFlashMemory(length: Int = 32768) {
    let (b, h, d) = (1, 8, 64)
    print("\n## flash attention memory (B = \(b), H = \(h), D = \(d), L = \(length), forward+backward)")
    let q = Tensor.randomNormal([b, h, length, d], seed: 1, requiresGrad: true)
    let k = Tensor.randomNormal([b, h, length, d], seed: 2, requiresGrad: true)
    let v = Tensor.randomNormal([b, h, length, d], seed: 3, requiresGrad: true)
    let seed = Tensor.randomNormal([b, h, length, d], seed: 4)
    for causal in [true, false] {
        for t in [q, k, v] { t.grad = nil }
        releaseIdleTensorStorage()                      // memory kept for reuse would hide what the call needs
        resetPeakResidentMemory()
        let before = peakResidentBytes()
        let start = DispatchTime.now().uptimeNanoseconds
        let out = FlashAttention.attention(query: q, key: k, value: v,
                                           configuration: FlashAttention.Configuration(pattern: causal ? .causal() : .full))
        let forwardDone = DispatchTime.now().uptimeNanoseconds
        out.output.backward(seed)
        let end = DispatchTime.now().uptimeNanoseconds
        let after = peakResidentBytes()
        // Must exist: O and LSE, dQ, dK, dV (and the backward's zero-filled gradient tensors are those).
        let tensorBytes = 4 * b * h * length * d
        let required = 4 * tensorBytes + 4 * b * h * length
        let extra = Double(after - before - required) / 1_048_576
        let flops = attentionFlops(batch: b, heads: h, length: length, depth: d, causal: causal)
        print("causal \(causal): forward \(format(Double(forwardDone - start) * 1e-9, 2)) s "
              + "(\(format(flops / Double(forwardDone - start), 1)) GFLOP/s), backward \(format(Double(end - forwardDone) * 1e-9, 2)) s; "
              + "peak RSS +\(format(Double(after - before) / 1_048_576)) MB, of which O, LSE, dQ, dK, dV "
              + "\(format(Double(required) / 1_048_576)) MB: extra \(format(extra)) MB")
        precondition(q.grad != nil && out.logSumExp.count == b * h * length)
    }
}

/// User + system CPU seconds of this process so far (all threads).
func processCPUSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// VmHWM of this process, bytes.
func peakResidentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kilobytes * 1024
    }
    return 0
}

/// Resets VmHWM to the current RSS (Linux: write "5" to /proc/self/clear_refs).
func resetPeakResidentMemory() {
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
}

/// One core, one tile pair (Bq = Bk = 96 queries/keys, D = Dv = 64) in a
/// loop: the flash forward and backward steps against OpenBLAS (1 thread) on
/// the forward's two tile products alone — the kernel efficiency behind the
/// engine's figures, without threads or pattern logic. CPU time of this
/// thread, best of 5 rounds.
func runFlashTileBenchmark() {
    let (rows, keys, d) = (Int(HEED_FLASH_QUERY_TILE), Int(HEED_FLASH_KEY_TILE), 64)
    // Steps over runs of whole tiles: the forward's up to HEED_FLASH_KEY_RUN keys, the backward's up to
    // HEED_FLASH_QUERY_RUN query rows.
    let (keyRun, queryRun) = (Int(HEED_FLASH_KEY_RUN), Int(HEED_FLASH_QUERY_RUN))
    print("\n## flash tile kernels, one thread (\(rows) queries × \(keys) keys, D = Dv = \(d), CPU time, best of 5; "
          + "AVX-512 \(heed_kernels_avx512_active() != 0 ? "on" : "off"))")
    func buffer(_ count: Int, _ value: Float = 0) -> UnsafeMutablePointer<Float> {
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        var generator = RandomGenerator(seed: UInt64(count))
        for i in 0 ..< count { pointer[i] = value == 0 ? generator.nextNormal() * 0.5 : value }
        return pointer
    }
    let q = buffer(queryRun * d), k = buffer(keyRun * d), v = buffer(keyRun * d), dO = buffer(queryRun * d)
    let panels = buffer(Int(heed_flash_panels_count(Int64(keyRun), Int64(d)))), valuePanels = buffer(Int(heed_flash_panels_count(Int64(keyRun), Int64(d))))
    heed_flash_pack_panels(k, Int64(keyRun), Int64(d), Int64(d), panels)
    heed_flash_pack_panels(v, Int64(keyRun), Int64(d), Int64(d), valuePanels)
    let tileFloats = Swift.max(rows * keyRun, queryRun * keys)
    let scores = buffer(tileFloats), dScores = buffer(tileFloats), out = buffer(rows * d)
    let rowMax = buffer(rows), rowSum = buffer(rows), rowScale = buffer(rows)
    let lse = buffer(queryRun, 12), delta = buffer(queryRun, 0.1), dq = buffer(queryRun * d), dk = buffer(keys * d), dv = buffer(keys * d)
    heed_blas_set_threads(1)
    defer { heed_blas_set_threads(Int32(ProcessInfo.processInfo.activeProcessorCount)) }
    func rate(_ flops: Double, _ body: () -> Void) -> Double {
        var best = Double.infinity
        for _ in 0 ..< 5 {
            let start = threadCPUSeconds()
            for _ in 0 ..< 2000 { body() }
            best = Swift.min(best, (threadCPUSeconds() - start) / 2000)
        }
        return flops / best * 1e-9
    }
    let tileFlops = 4 * Double(rows * keys * d)                          // the forward's two products
    var forward = heed_flash_forward_args()
    let valueSlabs = UnsafeMutablePointer<Float>.allocate(capacity: Int(heed_flash_panels_count(Int64(d), Int64(keyRun))))
    defer { valueSlabs.deallocate() }
    heed_flash_pack_slabs(v, Int64(keyRun), Int64(d), Int64(d), valueSlabs)
    (forward.query, forward.query_stride, forward.key_panels) = (UnsafePointer(q), Int64(d), UnsafePointer(panels))
    if heed_flash_value_slabs_help(Int64(d)) != 0 {                  // V as the engine lays it out on this CPU
        (forward.value, forward.value_stride, forward.value_panel_stride) = (UnsafePointer(valueSlabs), 16, Int64(keyRun * 16))
    } else {
        (forward.value, forward.value_stride, forward.value_panel_stride) = (UnsafePointer(v), Int64(d), 16)
    }
    (forward.rows, forward.keys, forward.depth, forward.value_depth, forward.scale) = (Int64(rows), Int64(keys), Int64(d), Int64(d), 0.125)
    (forward.tile_stride, forward.scores, forward.row_max, forward.row_sum, forward.row_scale) = (Int64(keys), scores, rowMax, rowSum, rowScale)
    let scaledQuery = UnsafeMutablePointer<Float>.allocate(capacity: rows * d)
    defer { scaledQuery.deallocate() }
    (forward.output, forward.output_stride) = (out, Int64(d))
    // Without the scaled query the step takes its two-pass path (S, then the
    // online softmax, then O += PV), as for tiles with a mask, bias, softcap or
    // dropout, or scores far from the running maximum.
    let step = rate(tileFlops) {
        rowMax.update(repeating: -.infinity, count: rows)
        rowSum.update(repeating: 0, count: rows)
        heed_flash_forward_step(&forward)
    }
    // With it, plain tiles take the one-pass path: no running maximum, no rescaling.
    forward.scaled_query = scaledQuery
    heed_flash_forward_begin(&forward)
    func onePassStep() {
        rowMax.update(repeating: 4, count: rows)
        rowSum.update(repeating: 0, count: rows)
        heed_flash_forward_step(&forward)
    }
    let onePass = rate(tileFlops, onePassStep)
    (forward.keys, forward.tile_stride) = (Int64(keyRun), Int64(keyRun))
    let onePassRun = rate(tileFlops * Double(keyRun) / Double(keys), onePassStep)
    var backward = heed_flash_backward_args()
    (backward.query, backward.query_stride, backward.key, backward.key_stride) = (UnsafePointer(q), Int64(d), UnsafePointer(k), Int64(d))
    (backward.key_panels, backward.value_panels, backward.d_output, backward.d_output_stride) =
        (UnsafePointer(panels), UnsafePointer(valuePanels), UnsafePointer(dO), Int64(d))
    (backward.log_sum_exp, backward.delta, backward.rows, backward.keys) = (UnsafePointer(lse), UnsafePointer(delta), Int64(rows), Int64(keys))
    (backward.depth, backward.value_depth, backward.scale, backward.tile_stride) = (Int64(d), Int64(d), 0.125, Int64(keys))
    (backward.scores, backward.d_scores, backward.d_query, backward.d_query_stride) = (scores, dScores, dq, Int64(d))
    (backward.d_key, backward.d_key_stride, backward.d_value, backward.d_value_stride) = (dk, Int64(d), dv, Int64(d))
    let backwardStep = rate(2.5 * tileFlops) { heed_flash_backward_step(&backward) }
    backward.rows = Int64(queryRun)
    let backwardRun = rate(2.5 * tileFlops * Double(queryRun) / Double(rows)) { heed_flash_backward_step(&backward) }
    let blas = rate(tileFlops) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keys), Int32(d), 1, q, Int32(d), k, Int32(d),
                    0, scores, Int32(keys))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(d), Int32(keys), 1, scores, Int32(keys), v,
                    Int32(d), 1, out, Int32(d))
    }
    print("| kernel | GFLOP/s (one core) |")
    print("|---|---|")
    print("| heed_flash_forward_step, two passes (S = QKᵀ, online softmax, O += PV) | \(format(step)) |")
    print("| heed_flash_forward_step, one pass (S = QKᵀ, then P = 2^(S − m) with its row sums in one sweep, O += PV) | \(format(onePass)) |")
    print("| heed_flash_forward_step, one pass over a key run (\(rows) queries × \(keyRun) keys) | \(format(onePassRun)) |")
    print("| heed_flash_backward_step (5 tile products, 2.5× the forward count) | \(format(backwardStep)) |")
    print("| heed_flash_backward_step over a query run (\(queryRun) queries × \(keys) keys) | \(format(backwardRun)) |")
    print("| cblas_sgemm, the forward's two products alone (no softmax) | \(format(blas)) |")
    for pointer in [q, k, v, dO, panels, valuePanels, scores, dScores, out, rowMax, rowSum, rowScale, lse, delta, dq, dk, dv] {
        pointer.deallocate()
    }
}

/// CPU seconds of the calling thread.
func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// The non-causal flash forward (B = 1, H = 8, D = 64) called back to back for
/// `seconds`, summarised per two-second window: calls, median wall and
/// process-CPU milliseconds per call, GFLOP/s. Shows how the machine's speed
/// moves while one program runs (on the shared VM measured here: windows of
/// seconds in which a call takes ≈ 10 % longer, CPU time rising with it —
/// the cores were slower, not idle).
func runFlashTrace(seconds: Double = 30, length: Int = 1024) {
    let (b, h, d) = (1, 8, 64)
    let q = Tensor.randomNormal([b, h, length, d], seed: 1)
    let k = Tensor.randomNormal([b, h, length, d], seed: 2)
    let v = Tensor.randomNormal([b, h, length, d], seed: 3)
    let configuration = FlashAttention.Configuration(pattern: .full)
    let flops = attentionFlops(batch: b, heads: h, length: length, depth: d, causal: false)
    print("\n## flash forward trace (L = \(length), B = \(b), H = \(h), D = \(d), cores: \(ProcessInfo.processInfo.activeProcessorCount)"
          + (ProcessInfo.processInfo.environment["HEED_FLASH_THREADS"].map { ", HEED_FLASH_THREADS=\($0)" } ?? "") + ", "
          + "kernels: \(CPUKernels.active))")
    print("| window (s) | calls | wall ms (median) | CPU ms (median) | CPU / wall | GFLOP/s |")
    print("|---|---|---|---|---|---|")
    var windows: [Int: [(wall: Double, cpu: Double)]] = [:]
    let start = DispatchTime.now().uptimeNanoseconds
    while Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 < seconds {
        let cpu0 = processCPUSeconds(), t0 = DispatchTime.now().uptimeNanoseconds
        _ = Tensor.withoutGrad { FlashAttention.attention(query: q, key: k, value: v, configuration: configuration) }
        let t1 = DispatchTime.now().uptimeNanoseconds, cpu1 = processCPUSeconds()
        windows[Int(Double(t0 - start) * 1e-9) / 2, default: []].append((Double(t1 - t0) * 1e-9, cpu1 - cpu0))
    }
    for window in windows.keys.sorted() {
        let calls = windows[window]!
        let wall = calls.map(\.wall).median, cpu = calls.map(\.cpu).median
        print("| \(2 * window)–\(2 * window + 2) | \(calls.count) | \(format(wall * 1e3, 2)) | \(format(cpu * 1e3, 2)) | "
              + "\(format(cpu / wall, 2)) | \(format(flops / wall * 1e-9)) |")
    }
}
