import Dispatch
import Foundation

/// Splits independent work over the cores with Dispatch.
enum Parallel {
    /// Active cores, read once.
    static let cores = Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body` on disjoint sub-ranges covering `0..<count`, in parallel
    /// when the work is large enough (`count / minimumChunk` > 1), inline otherwise.
    /// `body` must only touch data owned by its range.
    static func forEachChunk(_ count: Int, minimumChunk: Int, _ body: (Range<Int>) -> Void) {
        let chunks = Swift.min(cores, count / Swift.max(minimumChunk, 1))
        guard chunks > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let task = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = count * chunk / chunks
                let end = count * (chunk + 1) / chunks
                task.value(start..<end)
            }
        }
    }
}

/// Carries a value into a Dispatch work item.
///
/// Safe here because `Parallel.forEachChunk` hands each worker a disjoint
/// range and waits for all of them before returning: the closure and the
/// buffers it captures are never used concurrently on overlapping data, and
/// never outlive the call.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
