import CHeedKernels
import Dispatch
import Foundation

/// Spreads the flash engine's work items over the cores.
///
/// `workers` Dispatch workers (one per active core) take items from a shared
/// counter, so uneven items — the query tiles of a causal pattern, whose cost
/// grows with their index — balance themselves: callers list the costliest
/// items first. Each worker knows its index, so it can own scratch buffers
/// (and, in the backward, a private dQ accumulator) without locks.
enum FlashParallel {
    /// Active cores, read once; the environment variable `HEED_FLASH_THREADS`
    /// overrides it (benchmarks compare one thread with all).
    static let workers: Int = {
        if let value = ProcessInfo.processInfo.environment["HEED_FLASH_THREADS"], let count = Int(value), count >= 1 {
            return count
        }
        return Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Calls `body(worker, item)` for every item in 0 ..< count, each exactly
    /// once, on at most `workers` threads; returns when all are done. `body`
    /// must only write data owned by its item or its worker.
    static func run(_ count: Int, _ body: (_ worker: Int, _ item: Int) -> Void) {
        let threads = Swift.min(workers, count)
        if threads <= 1 {
            for item in 0 ..< count { body(0, item) }
            return
        }
        let counter = ItemCounter()
        withoutActuallyEscaping(body) { body in
            let task = FlashSendable(body)
            DispatchQueue.concurrentPerform(iterations: threads) { worker in
                while let item = counter.next(below: count) { task.value(worker, item) }
            }
        }
    }
}

extension FlashParallel {
    /// Runs, for each of `count` groups (the flash engine's key/value heads),
    /// `parts` preparation items — `prepare(group, part)`, e.g. packing that
    /// group's keys and values — and `items` work items that need them —
    /// `body(worker, group, item)` — so that preparation overlaps work: items
    /// are claimed in the order [preparation of group 0], then for each group g
    /// [preparation of g + 1, work of g]. A work item waits (spinning) until
    /// its group's preparation is done; one core thus prepares the next group,
    /// often reading cold memory, while the other works. Same guarantees as
    /// `run`: every call exactly once, all done on return.
    static func runPrepared(groups count: Int, parts: Int, items: Int, prepare: (_ group: Int, _ part: Int) -> Void,
                            _ body: (_ worker: Int, _ group: Int, _ item: Int) -> Void) {
        guard count > 0 else { return }
        let done = UnsafeMutablePointer<Int64>.allocate(capacity: count)      // preparation items finished, per group
        done.initialize(repeating: 0, count: count)
        defer { done.deallocate() }
        let block = parts + items
        run(parts + count * block) { worker, item in
            let (group, slot) = item < parts ? (-1, item) : ((item - parts) / block, (item - parts) % block)
            if slot < parts {                                                // preparation of group + 1
                guard group + 1 < count else { return }
                prepare(group + 1, slot)
                heed_flag_add(done + group + 1, 1)
                return
            }
            heed_flag_wait(done + group, Int64(parts))
            body(worker, group, slot - parts)
        }
    }
}

/// The next unclaimed item; a lock is cheap next to an item (≥ one tile pair,
/// tens of microseconds).
private final class ItemCounter: @unchecked Sendable {
    // @unchecked: `value` is read and written only under `lock`.
    private let lock = NSLock()
    private var value = 0

    func next(below count: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < count else { return nil }
        value += 1
        return value - 1
    }
}

/// Carries a closure or pointers into Dispatch workers.
///
/// Safe in the flash engine's uses: `FlashParallel.run` waits for every
/// worker before returning, so nothing captured outlives the call, and each
/// worker writes only the rows of its items (dK/dV of its key tile, O and LSE
/// of its query tile) or its own scratch — never memory another worker writes.
struct FlashSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
