import ArgumentParser
import Foundation
import HeedAttention
import HeedTensor

/// `heed bench linear`: the O(L) engines (Performer FAVOR+, elu+1 linear
/// attention, RFA), causal and not, and how their time grows with L.
struct BenchLinear: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linear",
        abstract: "Time the linear-time engines (performer, elu, rfa) over doubling lengths.",
        discussion: """
            Inputs q, k, v [B, H, L, D] are seeded standard-normal f32 tensors. Engines:
              performer  FAVOR+ with --features m orthogonal random features (default 256)
              elu        linear attention with φ(x) = elu(x) + 1 (D features)
              rfa        random feature attention with --features/2 frequencies (sin and cos: --features features)
            Causal runs use chunked prefix sums with --chunk positions per chunk. forward: no tape;
            forward+backward: q, k, v require gradients, then backward(seed).

            Timing: the lengths of one engine, mask and pass are measured in turn, --sweeps times
            (upwards, then downwards, and so on); each visit makes --warmup untimed calls, then timed
            calls until the visit has at least --repeats/--sweeps of them adding up to at least
            --min-time-ms/--sweeps. A length's time is the median of all its timed calls. So L and 2L
            are timed over the same stretch of seconds: when the machine runs slower for a while (on
            shared or virtual machines, by 10–25 % for seconds at a time), it slows both and their
            ratio stands; the process's one-time costs (worker threads, first page faults) fall on the
            first visit's warm-up calls. The table's last column is t(L)/t(L/2) when L/2 was also measured: linear time means
            about 2.

            FLOP convention: with F feature-map entries per position (performer m, rfa 2·(m/2), elu D)
            and P random-projection rows (performer m, rfa m/2, elu 0), forward = B·H·(4·L·F·D + 4·L·D·P)
            (φ(K)ᵀV and φ(Q)·S; projecting q and k), the same when causal; forward+backward = 3 × forward.

            --json prints one object per line, e.g.
              {"engine": "performer", "L": 4096, "causal": true, "pass": "forward", "ms": 52.1, "gflops": 41.2}

            Examples:
              heed bench linear
              heed bench linear --engines elu --lengths 1024,2048,4096 --json
            """
    )

    /// The lengths when `--lengths` is not given: 1024 … 65536, doubling.
    static let defaultLengths = (10...16).map { 1 << $0 }
    /// Every engine this command times, in its order.
    static let engineNames = ["performer", "elu", "rfa"]

    @OptionGroup var shape: BenchShape
    @Option(help: "Comma-separated engines: performer, elu, rfa.") var engines = "performer,elu,rfa"
    @Option(help: "Feature-map width F for performer and rfa (even, 2 to 65536).") var features = 256
    @Option(help: "Positions per chunk of the causal prefix sums (1 to 65536).") var chunk = 64
    @Option(help: "Comma-separated passes: forward, forward+backward.") var passes = "forward"
    @Option(name: .customLong("min-time-ms"), help: "Least total milliseconds of timed runs per length (0 to 60000).")
    var minimumMilliseconds = 250
    @Option(help: "Times each series' lengths are visited in turn (1 to 100).") var sweeps = 4

    func validate() throws {
        try shape.check()
        _ = try engineList()
        _ = try passList()
        guard (2...65536).contains(features), features % 2 == 0 else {
            throw BenchArgumentError.outOfRange(option: "--features", value: features, allowed: "even and in 2...65536")
        }
        guard (1...65536).contains(chunk) else {
            throw BenchArgumentError.outOfRange(option: "--chunk", value: chunk, allowed: "in 1...65536")
        }
        guard (1...100).contains(sweeps) else {
            throw BenchArgumentError.outOfRange(option: "--sweeps", value: sweeps, allowed: "in 1...100")
        }
        guard (0...60000).contains(minimumMilliseconds) else {
            throw BenchArgumentError.outOfRange(option: "--min-time-ms", value: minimumMilliseconds, allowed: "in 0...60000")
        }
    }

    func engineList() throws -> [String] {
        let names = engines.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        for name in names where !Self.engineNames.contains(name) {
            throw BenchArgumentError.unknownName(option: "--engines", value: name, allowed: Self.engineNames)
        }
        return names
    }

    func passList() throws -> [BenchPass] {
        try passes.split(separator: ",", omittingEmptySubsequences: false).map {
            let name = $0.trimmingCharacters(in: .whitespaces)
            guard let pass = BenchPass(rawValue: name) else {
                throw BenchArgumentError.unknownName(option: "--passes", value: name, allowed: BenchPass.allCases.map(\.rawValue))
            }
            return pass
        }
    }

    /// The engine as a closure (q, k, v, causal) → out, its feature width F and projection rows P.
    func makeEngine(_ name: String) -> (run: (Tensor, Tensor, Tensor, Bool) -> Tensor, featureWidth: Int, projectionRows: Int) {
        let d = shape.headDimension, chunk = self.chunk
        switch name {
        case "performer":
            let performer = Performer(features: features, headDimension: d, orthogonal: true, seed: 7)
            return ({ performer(query: $0, key: $1, value: $2, causal: $3, chunkSize: chunk) }, features, features)
        case "rfa":
            let rfa = RandomFeatureAttention(features: features / 2, headDimension: d, seed: 7)
            return ({ rfa(query: $0, key: $1, value: $2, causal: $3, chunkSize: chunk) }, features, features / 2)
        default:
            let linear = LinearAttention()
            return ({ linear(query: $0, key: $1, value: $2, causal: $3, chunkSize: chunk) }, d, 0)
        }
    }

    func run() throws {
        let lengths = try shape.parsedLengths(defaults: Self.defaultLengths)
        let passes = try passList()
        let printer = BenchPrinter(json: shape.json, showsEngine: true)
        let kernels = try shape.applyKernels()
        printer.header("Heed linear engines — B=\(shape.batch) H=\(shape.heads) D=\(shape.headDimension), features \(features), "
                       + "chunk \(chunk), median of ≥ \(shape.repeats) runs and ≥ \(minimumMilliseconds) ms in \(sweeps) sweeps "
                       + "after \(shape.warmup) warm-up each, "
                       + "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(kernels) kernels")
        for name in try engineList() {
            let engine = makeEngine(name)
            for causal in [false, true] {
                for pass in passes {
                    let times = sweptMilliseconds(lengths: lengths) { length in
                        passCall(pass, shape: shape, length: length) { engine.run($0, $1, $2, causal) }   // [B, H, L, D]
                    }
                    for length in lengths {
                        let perHead = 4 * Double(length) * Double(engine.featureWidth) * Double(shape.headDimension)
                            + 4 * Double(length) * Double(shape.headDimension) * Double(engine.projectionRows)
                        let flops = Double(shape.batch * shape.heads) * perHead * (pass == .forward ? 1 : 3)
                        let record = BenchRecord(engine: name, length: length, causal: causal, pass: pass,
                                                 milliseconds: times[length]!, flops: flops)
                        printer.row(record, ratio: length % 2 == 0 ? times[length / 2].map { times[length]! / $0 } : nil)
                    }
                }
            }
        }
    }

    /// The median milliseconds of each length's timed calls, the lengths
    /// visited in turn `sweeps` times (see the discussion above); `makeCall`
    /// prepares one length's inputs and returns its call.
    func sweptMilliseconds(lengths: [Int], makeCall: (Int) -> () -> Void) -> [Int: Double] {
        let distinct = Array(Set(lengths)).sorted()
        let calls = Dictionary(uniqueKeysWithValues: distinct.map { ($0, makeCall($0)) })
        var samples: [Int: [Double]] = [:]
        let repeatsPerVisit = (shape.repeats + sweeps - 1) / sweeps
        for sweep in 0..<sweeps {
            for length in sweep % 2 == 0 ? distinct : distinct.reversed() {
                samples[length, default: []] += timedMilliseconds(warmup: shape.warmup, repeats: repeatsPerVisit,
                                                                  minimumSeconds: Double(minimumMilliseconds) / 1e3 / Double(sweeps),
                                                                  calls[length]!)
            }
        }
        return samples.mapValues(median)
    }
}
