import ArgumentParser
import Foundation
import HeedAttention
import HeedTensor

/// `heed bench attention`: softmax attention (scaled dot product), causal and
/// not, forward and forward+backward, Heed alone.
struct BenchAttention: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Time scaled dot-product softmax attention: causal and not, forward and forward+backward.",
        discussion: """
            Inputs q, k, v [B, H, L, D] are seeded standard-normal f32 tensors (Tq = Tk = L, Hkv = H).
            forward: one attention call without a tape. forward+backward: the same call with q, k, v
            requiring gradients, then backward(seed) with a seeded random ∂L/∂out [B, H, L, D].
            Each configuration runs --warmup untimed times, then --repeats timed times; the median is
            reported.

            FLOP convention (FlashAttention-2's): forward = 4·B·H·L²·D (Q·Kᵀ and P·V, 2·L²·D each),
            half of that when causal; forward+backward = 3.5 × forward (the backward does 2.5 times the
            forward's matmul work: dV, dP, dQ, dK plus recomputing S). GFLOP/s = FLOP / time.

            The dense engine materialises [B, H, L, L] scores (and their weights and gradients); lengths
            whose score tensor B·H·L²·4 bytes exceeds --dense-limit-mib are skipped with a note on
            stderr when the dense engine would run them.

            --json prints one object per line, e.g.
              {"L": 2048, "causal": false, "pass": "forward", "ms": 41.7, "gflops": 164.9}
            (pass is forward or forward+backward; ms and gflops have four significant digits).

            Examples:
              heed bench attention
              heed bench attention --lengths 1024,2048 --repeats 3 --json
              heed bench attention --engine dense --heads 4 --head-dimension 128
            """
    )

    /// The lengths when `--lengths` is not given.
    static let defaultLengths = [512, 1024, 2048, 4096, 8192]

    @OptionGroup var shape: BenchShape
    @Option(help: "automatic, dense or flash.") var engine = "automatic"
    @Option(name: .customLong("dense-limit-mib"),
            help: "Skip lengths whose dense score tensor B·H·L²·4 bytes exceeds this many MiB (1 to 1048576).")
    var denseLimitMebibytes = 1024

    func validate() throws {
        try shape.check()
        _ = try attentionEngine()
        guard (1...1_048_576).contains(denseLimitMebibytes) else {
            throw BenchArgumentError.outOfRange(option: "--dense-limit-mib", value: denseLimitMebibytes, allowed: "in 1...1048576")
        }
    }

    /// The engine `--engine` names.
    func attentionEngine() throws -> Attention.Engine {
        switch engine {
        case "automatic": return .automatic
        case "dense": return .dense
        case "flash": return .flash
        default:
            throw BenchArgumentError.unknownName(option: "--engine", value: engine, allowed: ["automatic", "dense", "flash"])
        }
    }

    /// Whether `engine` materialises the [B, H, L, L] scores at this length
    /// (`.automatic` runs softmax attention on the flash engine from
    /// L² ≥ ``Attention/flashThreshold``).
    static func runsDense(_ engine: Attention.Engine, length: Int) -> Bool {
        switch engine {
        case .dense: return true
        case .flash: return false
        case .automatic: return length * length < Attention.flashThreshold
        }
    }

    /// 4·B·H·L²·D, halved when causal (FlashAttention-2's convention); × 3.5 with the backward.
    static func flops(batch: Int, heads: Int, length: Int, headDimension: Int, causal: Bool, pass: BenchPass) -> Double {
        let forward = 4 * Double(batch) * Double(heads) * Double(length) * Double(length) * Double(headDimension) * (causal ? 0.5 : 1)
        return pass == .forward ? forward : 3.5 * forward
    }

    func run() throws {
        let engine = try attentionEngine()
        let lengths = try shape.parsedLengths(defaults: Self.defaultLengths)
        let printer = BenchPrinter(json: shape.json, showsEngine: false)
        let kernels = try shape.applyKernels()
        printer.header("Heed attention — engine: \(self.engine)\(engine == .dense ? " (runs the dense engine)" : ""), "
                       + "B=\(shape.batch) H=\(shape.heads) D=\(shape.headDimension), median of \(shape.repeats) after \(shape.warmup) warm-up, "
                       + "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(kernels) kernels")
        var skipped: [Int] = []
        // Process warm-up: every configuration once, untimed, at the first length, so that the
        // process's one-time costs (worker threads, first page faults) fall on no measurement —
        // they fell on the first configuration (L=512 non-causal forward: 6–10 ms when measured
        // first, 4–5 ms after the others). compare_pytorch.py's PyTorch side is one warm process.
        if shape.warmup > 0, let first = lengths.first(where: { !Self.runsDense(engine, length: $0) || $0 <= 4096 }) {
            var once = shape
            (once.warmup, once.repeats) = (0, 1)
            for causal in [false, true] {
                var attention = Attention(pattern: causal ? .causal() : .full)
                attention.engine = engine
                for pass in BenchPass.allCases {
                    _ = timePass(pass, shape: once, length: first) { attention(query: $0, key: $1, value: $2).output }
                }
            }
        }
        for length in lengths {
            let scoreBytes = Double(shape.batch) * Double(shape.heads) * Double(length) * Double(length) * 4
            if Self.runsDense(engine, length: length), scoreBytes > Double(denseLimitMebibytes) * 1_048_576 {
                printer.note("skipping L=\(length): the dense engine's [B, H, L, L] scores would take \(Int(scoreBytes / 1_048_576)) MiB "
                             + "(> --dense-limit-mib \(denseLimitMebibytes)), and forward+backward keeps several such tensors")
                skipped.append(length)
                continue
            }
            for causal in [false, true] {
                var attention = Attention(pattern: causal ? .causal() : .full)
                attention.engine = engine
                for pass in BenchPass.allCases {
                    let milliseconds = timePass(pass, shape: shape, length: length) { query, key, value in
                        attention(query: query, key: key, value: value).output                   // [B, H, L, D]
                    }
                    let flops = Self.flops(batch: shape.batch, heads: shape.heads, length: length,
                                           headDimension: shape.headDimension, causal: causal, pass: pass)
                    printer.row(BenchRecord(length: length, causal: causal, pass: pass, milliseconds: milliseconds, flops: flops))
                }
            }
        }
        if !skipped.isEmpty, !shape.json {
            printer.line("skipped (dense scores over \(denseLimitMebibytes) MiB): L = \(skipped.map(String.init).joined(separator: ", "))")
        }
    }
}
