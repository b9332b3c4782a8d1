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
    /// The memory, freed (or kept for reuse) when the storage goes.
    private let block: StorageBlock

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

    /// Blocks of at least this many bytes are kept for reuse when their
    /// storage goes (scratch blocks — ``withScratchBuffers(_:_:)``,
    /// ``ScratchMemory`` — whatever their size), up to ``reuseLimitBytes``
    /// idle in all, and a new one takes an idle block at most a quarter
    /// larger than it needs.
    ///
    /// Why: even below the huge-page threshold glibc did not hand freed blocks
    /// of a few MiB back to the next request: the flash attention backward at
    /// L = 1024 spent ≈ 2.7 ms of 36 ms allocating and zeroing its three 2 MiB
    /// gradients, nearly all of it in first-touch page faults.
    ///
    /// The limit is what one call of the largest workloads benchmarked here
    /// frees and asks for again: with 64 MiB, elu linear attention at
    /// L = 16384 (three 32 MiB tensors a call) took 23.5 or 31.9 ms depending
    /// on which blocks the pool still held, and from there to L = 65536 each
    /// doubling cost up to 3× (new huge pages zeroed by the kernel: 0, 18 and 68
    /// page faults a call at L = 8192, 16384, 32768); with 512 MiB it takes
    /// 21 ms and each doubling 1.9–2.1×. ``releaseIdleTensorStorage()`` hands the
    /// idle blocks back to the system.
    static let reuseThresholdBytes = 1 << 20
    static let reuseLimitBytes = 512 << 20
    static let idle = ReusePool<StorageBlock>(retainedBytes: reuseLimitBytes)

    /// Allocates `count` floats, uninitialised: the caller writes every element.
    init(uninitializedCount count: Int) {
        precondition(count >= 0, "TensorStorage: negative element count \(count)")
        self.count = count
        block = Self.takeBlock(bytes: count * MemoryLayout<Float>.stride)
        base = block.base
    }

    /// An idle block that fits `bytes` (at most a quarter larger), or a new one;
    /// below ``reuseThresholdBytes`` always a new one unless `scratch`.
    static func takeBlock(bytes: Int, scratch: Bool = false) -> StorageBlock {
        guard scratch || bytes >= reuseThresholdBytes else { return StorageBlock(bytes: bytes) }
        return idle.take(where: { $0.bytes >= bytes && $0.bytes - bytes <= bytes / 4 }) { StorageBlock(bytes: bytes) }
    }

    /// Keeps `block` for a later ``takeBlock(bytes:scratch:)`` when it is large
    /// enough or `scratch`; frees it otherwise.
    static func giveBlock(_ block: StorageBlock, scratch: Bool = false) {
        if scratch || block.bytes >= reuseThresholdBytes { idle.give(block, bytes: block.bytes) }
    }

    convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        base.initialize(repeating: value, count: count)
    }

    deinit { Self.giveBlock(block) }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: count) }
}

/// The memory under a ``TensorStorage``: `bytes` (at least 4) from the heap,
/// 64-byte aligned, or 2 MiB-aligned and advised to use huge pages from
/// ``TensorStorage/hugePageThresholdBytes`` up on Linux.
final class StorageBlock {
    let base: UnsafeMutablePointer<Float>
    let bytes: Int
    /// Whether `base` came from posix_memalign (released with `free`).
    private let isHugePageBacked: Bool

    init(bytes: Int) {
        self.bytes = bytes
        #if os(Linux)
        var raw: UnsafeMutableRawPointer?
        if bytes >= TensorStorage.hugePageThresholdBytes, posix_memalign(&raw, 2 << 20, bytes) == 0, let raw {
            _ = madvise(raw, bytes, Int32(MADV_HUGEPAGE))   // advice only: ignored where THP is off
            self.base = raw.bindMemory(to: Float.self, capacity: bytes / MemoryLayout<Float>.stride)
            self.isHugePageBacked = true
            return
        }
        #endif
        let count = Swift.max(bytes / MemoryLayout<Float>.stride, 1)
        self.base = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: Self.alignment)
            .bindMemory(to: Float.self, capacity: count)
        self.isHugePageBacked = false
    }

    /// The alignment of blocks below the huge-page threshold: a cache line.
    /// malloc's 16 bytes left rows of [.., L, 64] tensors straddling lines at
    /// random per allocation, and the AVX2 kernels' 32-byte loads that cross a
    /// line cost twice: the flash backward on one core ran at 98–100 GFLOP/s
    /// with 16- or 32-byte-aligned Q, K, V and dO, 105.6 with 64 (AVX2;
    /// AVX-512 107.4–108.0 either way).
    static let alignment = 64

    deinit {
        #if os(Linux)
        if isHugePageBacked { free(base); return }
        #endif
        UnsafeMutableRawPointer(base).deallocate()
    }
}

/// Calls `body` with one uninitialised buffer of at least `counts[i]` floats
/// each, for scratch space of hot paths (the flash engine's packed panels and
/// private gradients): the blocks come from the pool behind tensor storage,
/// whatever their size, and go back to it after, so repeated calls do not
/// page-fault afresh.
package func withScratchBuffers<R>(_ counts: [Int], _ body: ([UnsafeMutablePointer<Float>]) throws -> R) rethrows -> R {
    let memories = counts.map { ScratchMemory(count: $0) }
    return try withExtendedLifetime(memories) { try body(memories.map(\.base)) }
}

/// Scratch memory of a hot path that an object owns (the flash engine's
/// per-worker tiles): at least `count` floats, uninitialised, 64-byte aligned,
/// from the pool behind tensor storage whatever their size, and back to it
/// when this goes. Why: the flash forward's 200 KB tiles came from a fresh
/// mmap (or trimmed heap) on every call — ≈ 30 page faults a call, 6 000 over a
/// `heed bench attention --lengths 1024` run, none once pooled.
package final class ScratchMemory {
    package let base: UnsafeMutablePointer<Float>
    private let block: StorageBlock

    package init(count: Int) {
        block = TensorStorage.takeBlock(bytes: count * MemoryLayout<Float>.stride, scratch: true)
        base = block.base
    }

    deinit { TensorStorage.giveBlock(block, scratch: true) }
}

/// Frees the memory Heed keeps for reuse: the blocks of tensors (of 1 MiB and
/// more) and of scratch buffers that are no longer in use, up to 512 MiB in
/// all, which later requests of a similar size take instead of new memory. Call it after
/// a large computation to hand that memory back to the system (and before
/// measuring what a call needs).
public func releaseIdleTensorStorage() { TensorStorage.idle.removeAll() }
