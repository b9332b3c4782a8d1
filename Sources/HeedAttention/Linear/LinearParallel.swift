import Dispatch
import Foundation
import HeedTensor

/// Splits the independent work of the fused linear attentions — heads of the
/// causal scan, row ranges of the feature maps — over the cores with Dispatch.
enum LinearParallel {
    /// Active cores, read once.
    static let cores = Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body(i)` for every i in 0..<count, concurrently when there is more
    /// than one item and more than one core. `body` must only write data owned by item i.
    static func forEach(_ count: Int, _ body: (Int) -> Void) {
        guard count > 1, cores > 1 else {
            for index in 0..<count { body(index) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let task = LinearSendable(body)
            DispatchQueue.concurrentPerform(iterations: count) { task.value($0) }
        }
    }

    /// Calls `body` on disjoint row ranges covering 0..<rows, a few per core so
    /// that a slow core does not hold the others up; inline when the work is small.
    static func forEachRange(_ rows: Int, elementsPerRow: Int, _ body: (Range<Int>) -> Void) {
        let minimumElements = 1 << 15
        let parts = Swift.min(4 * cores, rows, Swift.max(1, rows * elementsPerRow / minimumElements))
        forEach(parts) { part in body((rows * part / parts)..<(rows * (part + 1) / parts)) }
    }
}

/// Carries a closure into Dispatch workers.
///
/// Safe here because `LinearParallel.forEach` waits for every worker before it
/// returns, and each worker writes only the outputs of its own item: the
/// closure and the buffers it captures are never written concurrently at the
/// same place and never outlive the call.
struct LinearSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension Tensor {
    /// Reads the elements of several tensors at once (nil entries stay nil).
    static func withUnsafeScalars<R>(_ tensors: [Tensor?], _ body: ([UnsafePointer<Float>?]) -> R) -> R {
        func nest(_ index: Int, _ pointers: [UnsafePointer<Float>?]) -> R {
            guard index < tensors.count else { return body(pointers) }
            guard let tensor = tensors[index] else { return nest(index + 1, pointers + [nil]) }
            return tensor.withUnsafeScalars { nest(index + 1, pointers + [$0.baseAddress]) }
        }
        return nest(0, [])
    }

    /// New tensors of the given shapes whose elements `fill` writes — every
    /// element of each, in one call (for kernels with several outputs).
    static func filling(_ shapes: [[Int]], _ fill: ([UnsafeMutablePointer<Float>]) -> Void) -> [Tensor] {
        func nest(_ index: Int, _ pointers: [UnsafeMutablePointer<Float>]) -> [Tensor] {
            guard index < shapes.count else {
                fill(pointers)
                return []
            }
            var rest: [Tensor] = []
            let tensor = Tensor(shape: shapes[index]) { buffer in rest = nest(index + 1, pointers + [buffer.baseAddress!]) }
            return [tensor] + rest
        }
        return nest(0, [])
    }
}
