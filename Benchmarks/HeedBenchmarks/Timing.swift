import Foundation

/// Wall-clock seconds of each of `repetitions` calls of `body`, after `warmup`
/// untimed calls (which also fault in any memory the body touches first).
func timeRuns(repetitions: Int, warmup: Int = 2, _ body: () -> Void) -> [Double] {
    for _ in 0..<warmup { body() }
    return (0..<repetitions).map { _ in
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    }
}

extension Array where Element == Double {
    var median: Double {
        let sorted = self.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
    var best: Double { self.min() ?? .nan }
}

/// Fixed-width column text.
func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

func format(_ value: Double, _ decimals: Int = 1) -> String { String(format: "%.\(decimals)f", value) }

/// Splits 0..<count into `parts` contiguous ranges and runs them concurrently.
/// `body` must only touch data owned by its range.
func concurrentChunks(_ count: Int, parts: Int, _ body: (Range<Int>) -> Void) {
    if parts <= 1 { body(0..<count); return }
    withoutActuallyEscaping(body) { body in
        let task = UncheckedBox(body)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            task.value((count * part / parts)..<(count * (part + 1) / parts))
        }
    }
}

/// Carries a closure or pointer into Dispatch workers. Safe in this file's
/// uses: every worker gets a disjoint range, and concurrentPerform returns
/// only after all of them finished, so nothing is shared or outlives the call.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

let cores = ProcessInfo.processInfo.activeProcessorCount
