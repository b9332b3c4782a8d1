import ArgumentParser
import Foundation
import HeedAttention
import HeedTensor

/// `heed bench`: times Heed alone on seeded random inputs. Side-by-side
/// comparisons with PyTorch live in `Benchmarks/attention/compare_pytorch.py`,
/// which runs these commands with `--json`.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time Heed's attention engines (Heed alone; see Benchmarks/attention for PyTorch side by side).",
        discussion: """
            Examples:
              heed bench attention
              heed bench attention --lengths 1024,2048 --repeats 3 --json
              heed bench linear --lengths 1024,2048,4096
            """,
        subcommands: [BenchAttention.self, BenchLinear.self]
    )
}

/// A bad `heed bench` argument: printed as `Error: …`, exit status 1.
enum BenchArgumentError: Error, CustomStringConvertible {
    /// `--lengths` is empty or holds something other than whole numbers in range.
    case badLengths(String)
    /// A numeric option outside its range.
    case outOfRange(option: String, value: Int, allowed: String)
    /// A name that the option does not know.
    case unknownName(option: String, value: String, allowed: [String])
    /// A choice this build cannot run.
    case unavailable(String)

    var description: String {
        switch self {
        case .badLengths(let text):
            return "--lengths takes comma-separated whole numbers from 1 to \(BenchShape.maximumLength), e.g. 512,1024; got '\(text)'"
        case .outOfRange(let option, let value, let allowed):
            return "\(option) must be \(allowed), got \(value)"
        case .unknownName(let option, let value, let allowed):
            return "\(option) takes \(allowed.joined(separator: ", ")); got '\(value)'"
        case .unavailable(let message):
            return message
        }
    }
}

/// The options every `heed bench` subcommand shares; defaults live here.
struct BenchShape: ParsableArguments {
    /// The longest sequence `--lengths` accepts (2^20).
    static let maximumLength = 1 << 20

    @Option(help: "Comma-separated sequence lengths L (Tq = Tk = L); the default depends on the subcommand.") var lengths: String?
    @Option(help: "Heads H (1 to 1024).") var heads = 8
    @Option(name: .customLong("head-dimension"), help: "Head dimension D of q, k and v (1 to 4096).") var headDimension = 64
    @Option(help: "Batch size B (1 to 1024).") var batch = 1
    @Option(help: "Timed runs per measurement; the median is reported (1 to 1000).") var repeats = 5
    @Option(help: "Untimed warm-up runs before the timed ones (0 to 100).") var warmup = 1
    @Flag(help: "One JSON object per line instead of a table.") var json = false
    @Option(help: "Cap Heed's own kernels: automatic (the best this CPU has), avx2 (no AVX-512) or portable.")
    var kernels = "automatic"

    init() {}

    /// The parsed `--lengths` (or `defaults`), in the order given.
    func parsedLengths(defaults: [Int]) throws -> [Int] {
        guard let lengths else { return defaults }
        let parts = lengths.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let values = parts.compactMap { Int($0) }
        guard !parts.isEmpty, values.count == parts.count, values.allSatisfy({ (1...Self.maximumLength).contains($0) }) else {
            throw BenchArgumentError.badLengths(lengths)
        }
        return values
    }

    /// Checks every numeric option; throws the first violation.
    func check() throws {
        _ = try parsedLengths(defaults: [])
        let ranges: [(String, Int, ClosedRange<Int>)] = [
            ("--heads", heads, 1...1024), ("--head-dimension", headDimension, 1...4096), ("--batch", batch, 1...1024),
            ("--repeats", repeats, 1...1000), ("--warmup", warmup, 0...100),
        ]
        for (option, value, range) in ranges where !range.contains(value) {
            throw BenchArgumentError.outOfRange(option: option, value: value, allowed: "in \(range.lowerBound)...\(range.upperBound)")
        }
        _ = try kernelLevel()
    }

    /// The level `--kernels` names, if this CPU can run it.
    func kernelLevel() throws -> CPUKernels.Level {
        guard let level = CPUKernels.Level(rawValue: kernels) else {
            throw BenchArgumentError.unknownName(option: "--kernels", value: kernels, allowed: CPUKernels.Level.allCases.map(\.rawValue))
        }
        guard CPUKernels.supports(level) else {
            throw BenchArgumentError.unavailable("--kernels \(kernels): this CPU has no AVX2+FMA")
        }
        return level
    }

    /// Applies `--kernels` (process-wide) and names what runs, for the header.
    func applyKernels() throws -> String {
        CPUKernels.limit(to: try kernelLevel())
        return CPUKernels.active
    }

    /// Seeded standard-normal [B, H, L, D] inputs.
    func randomInput(length: Int, seed: UInt64, requiresGrad: Bool = false) -> Tensor {
        Tensor.randomNormal([batch, heads, length, headDimension], seed: seed, requiresGrad: requiresGrad)
    }
}

/// Which passes a measurement covers.
enum BenchPass: String, CaseIterable {
    /// The forward pass alone, without recording a tape.
    case forward
    /// The forward pass with inputs that require gradients, then `backward(seed)`.
    case forwardBackward = "forward+backward"
}

/// One timed configuration: what `--json` prints as one line.
struct BenchRecord {
    var engine: String?
    var length: Int
    var causal: Bool
    var pass: BenchPass
    var milliseconds: Double
    var flops: Double

    /// FLOP / time, in units of 10^9 per second.
    var gigaflopsPerSecond: Double { flops / (milliseconds * 1e6) }

    /// `{"L": 2048, "causal": false, "pass": "forward", "ms": 41.7, "gflops": 164.9}`
    /// (with a leading `"engine"` field when set). Keys in this order.
    var jsonLine: String {
        var fields: [String] = []
        if let engine { fields.append("\"engine\": \"\(engine)\"") }
        fields += ["\"L\": \(length)", "\"causal\": \(causal)", "\"pass\": \"\(pass.rawValue)\"",
                   "\"ms\": \(significant(milliseconds))", "\"gflops\": \(significant(gigaflopsPerSecond))"]
        return "{" + fields.joined(separator: ", ") + "}"
    }
}

/// `value` with four significant digits and at least one decimal, never in
/// exponent form: 41.73, 0.05234, 1234.5.
func significant(_ value: Double) -> String {
    guard value.isFinite, value > 0 else { return value.isFinite ? "0.0" : "null" }
    let decimals = min(12, max(1, 3 - Int(floor(log10(value)))))
    return String(format: "%.\(decimals)f", value)
}

/// The wall-clock milliseconds of each timed call of `body` after `warmup`
/// untimed calls: at least `repeats` calls, and more (up to
/// `maximumRepeats`) until the timed calls add up to `minimumSeconds`, so that
/// a short call is measured over a stretch of time rather than a few instants.
func timedMilliseconds(warmup: Int, repeats: Int, minimumSeconds: Double = 0, _ body: () -> Void) -> [Double] {
    let maximumRepeats = 10_000
    for _ in 0..<warmup { body() }
    var times: [Double] = []
    var total = 0.0
    while times.count < repeats || (total < minimumSeconds * 1e3 && times.count < maximumRepeats) {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-6)
        total += times[times.count - 1]
    }
    return times
}

/// The median of a non-empty list.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// One pass of `run` on seeded inputs, ready to be called again and again:
/// forward without a tape, or forward with q, k, v requiring gradients
/// followed by `backward(seed)` with a seeded random ∂L/∂out (gradients
/// cleared before every call).
func passCall(_ pass: BenchPass, shape: BenchShape, length: Int,
              _ run: @escaping (_ query: Tensor, _ key: Tensor, _ value: Tensor) -> Tensor) -> () -> Void {
    let requiresGrad = pass == .forwardBackward
    let query = shape.randomInput(length: length, seed: 1, requiresGrad: requiresGrad)    // [B, H, L, D]
    let key = shape.randomInput(length: length, seed: 2, requiresGrad: requiresGrad)      // [B, H, L, D]
    let value = shape.randomInput(length: length, seed: 3, requiresGrad: requiresGrad)    // [B, H, L, D]
    switch pass {
    case .forward:
        return { _ = Tensor.withoutGrad { run(query, key, value) } }
    case .forwardBackward:
        let seed = shape.randomInput(length: length, seed: 4)                              // [B, H, L, D]
        return {
            query.grad = nil
            key.grad = nil
            value.grad = nil
            run(query, key, value).backward(seed)
        }
    }
}

/// Times one pass of `run` (``passCall(_:shape:length:_:)``): the median
/// milliseconds of `shape.repeats` calls after `shape.warmup` untimed ones.
func timePass(_ pass: BenchPass, shape: BenchShape, length: Int,
              _ run: @escaping (_ query: Tensor, _ key: Tensor, _ value: Tensor) -> Tensor) -> Double {
    median(timedMilliseconds(warmup: shape.warmup, repeats: shape.repeats, passCall(pass, shape: shape, length: length, run)))
}

/// Prints a table header or nothing (JSON), then one row or line per record.
struct BenchPrinter {
    let json: Bool
    let showsEngine: Bool

    func header(_ title: String) {
        guard !json else { return }
        line(title)
        let engine = showsEngine ? pad("engine", 11) : ""
        line(engine + pad("L", 8) + pad("causal", 8) + pad("pass", 18) + pad("ms", 12) + pad("GFLOP/s", 10) + (showsEngine ? "t(L)/t(L/2)" : ""))
    }

    func row(_ record: BenchRecord, ratio: Double? = nil) {
        if json { line(record.jsonLine) } else {
            let engine = showsEngine ? pad(record.engine ?? "", 11) : ""
            line(engine + pad("\(record.length)", 8) + pad(record.causal ? "yes" : "no", 8) + pad(record.pass.rawValue, 18)
                  + pad(significant(record.milliseconds), 12) + pad(String(format: "%.1f", record.gigaflopsPerSecond), 10)
                  + (ratio.map { String(format: "%.2f", $0) } ?? ""))
        }
    }

    /// One line on stdout, written at once (unbuffered: a script reading a
    /// pipe sees every row as soon as it is measured).
    func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// A line for the person reading (stderr, so that `--json` output stays pure).
    func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
