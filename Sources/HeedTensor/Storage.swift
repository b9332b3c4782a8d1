#if canImport(Glibc)
import Glibc
#endif

/// A contiguous, heap-allocated run of `Float`s shared by tensors that are
/// views of one another (reshape, squeeze, unsqueeze share storage).
///
/// Heed never mutates storage that a tensor already exposes, except through the
/// explicitly named `withUnsafeMutableScalars`; ops always write fresh storage.
final class TensorStorage {
    let base: UnsafeMutablePointer<Float>
    let count: Int
    /// Whether `base` came from posix_memalign (released with `free`).
    private let isHugePageBacked: Bool

    /// Allocations of at least this many bytes are 2 MiB aligned and advised
    /// to use transparent huge pages on Linux.
    ///
    /// Why: glibc serves blocks above 32 MiB with a fresh mmap every time, so
    /// each new large tensor page-faults once per 4 KiB page. Measured here
    /// (BENCHMARKS.md), allocating and writing 64 MiB took 44 ms with malloc,
    /// 7.6 ms with huge pages and 4.1 ms in memory already mapped. Between
    /// 8 and 32 MiB glibc's heap did not reuse freed blocks in practice either:
    /// elu linear attention at L = 8192 (16 MiB tensors) took 52 ms with a
    /// 32 MiB threshold and 22–25 ms with this one — the per-position cost of
    /// L = 16384. Small tensors keep malloc, which reuses them (4 MiB: 0.06 ms
    /// against 0.2 ms for fresh huge pages; with a 2 MiB threshold MiniLM,
    /// whose tensors are 1.5–7 MiB, fell from ≈ 140 to ≈ 100 sentences/s).
    static let hugePageThresholdBytes = 8 << 20

    /// Allocates `count` floats, uninitialised: the caller writes every element.
    init(uninitializedCount count: Int) {
        precondition(count >= 0, "TensorStorage: negative element count \(count)")
        self.count = count
        #if os(Linux)
        let bytes = count * MemoryLayout<Float>.stride
        var raw: UnsafeMutableRawPointer?
        if bytes >= Self.hugePageThresholdBytes, posix_memalign(&raw, 2 << 20, bytes) == 0, let raw {
            _ = madvise(raw, bytes, Int32(MADV_HUGEPAGE))   // advice only: ignored where THP is off
            self.base = raw.bindMemory(to: Float.self, capacity: count)
            self.isHugePageBacked = true
            return
        }
        #endif
        self.base = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(count, 1))
        self.isHugePageBacked = false
    }

    convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        base.initialize(repeating: value, count: count)
    }

    deinit {
        #if os(Linux)
        if isHugePageBacked { free(base); return }
        #endif
        base.deallocate()
    }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: count) }
}
