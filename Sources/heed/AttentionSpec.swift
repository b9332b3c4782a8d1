import ArgumentParser
import Foundation
import HeedAttention
import HeedTensor

/// A catalogue configuration as the command line spells it, before any
/// tensor is read. Parsing is strict: every malformed value is a thrown
/// `ValidationError` naming the flag.
struct AttentionSpec {
    var score = "scaled-dot"
    var scale: Float?
    var temperature: Float = 1
    var normalizer = "softmax"
    var patterns: [String] = []
    var causal: String?
    var heads: Int?
    var keyValueHeads: Int?
    var dropout: Float = 0
    var seed: UInt64 = 0
    /// `half` or `interleaved` rotary embeddings on q and k.
    var rope: String?
    var ropeBase: Double = 10000
    var rotaryDimension: Int?
    /// `causal` (−m·(i − j)) or `symmetric` (−m·|i − j|) ALiBi.
    var alibi: String?
    /// `bidirectional` or `causal` T5 relative-position buckets.
    var relative: String?
    var relativeBuckets = 32
    var relativeMaxDistance = 128
    /// dense, performer, rfa, elu or linformer.
    var engine = "dense"
    var features: Int?
    var iid = false
    var sigma: Float?
    var chunk = 64
    var projectedLength: Int?

    /// Inputs read from a safetensors file: `q` [B, H, Tq, D], `k`/`v` [B, Hkv, Tk, D|Dv],
    /// optional `mask` (1 = attend) and `bias`, and parameters under `score.*`.
    struct Inputs {
        var query: Tensor
        var key: Tensor
        var value: Tensor
        var mask: Tensor?
        var bias: Tensor?
        var parameters: [String: Tensor]
    }

    static func readInputs(_ file: SafeTensorsFile, prefix: String) throws -> Inputs {
        func required(_ name: String) throws -> Tensor {
            guard file.contains(prefix + name) else { throw CLIError("input file has no tensor '\(prefix + name)'") }
            return try file.tensor(prefix + name)
        }
        func optional(_ name: String) throws -> Tensor? { file.contains(prefix + name) ? try file.tensor(prefix + name) : nil }
        var parameters: [String: Tensor] = [:]
        // T5 tables: `relative.table` (or `table`) [buckets, H].
        for name in ["relative.table", "table"] where file.contains(prefix + name) && parameters["relative.table"] == nil {
            parameters["relative.table"] = try file.tensor(prefix + name)
        }
        // Linear engines: random projections, RFA's σ and gate, Linformer's E and F.
        for name in ["projection", "sigma", "gate_weight", "gate_bias", "gate_input", "e", "f"] where file.contains(prefix + name) {
            parameters[name] = try file.tensor(prefix + name)
        }
        for name in file.names where name.hasPrefix(prefix + "score.") {
            parameters[String(name.dropFirst(prefix.count))] = try file.tensor(name)
        }
        return Inputs(query: try required("q"), key: try required("k"), value: try required("v"),
                      mask: try optional("mask"), bias: try optional("bias"), parameters: parameters)
    }

    /// Checks every shape the library would otherwise stop on.
    func validate(_ inputs: Inputs) throws {
        let (q, k, v) = (inputs.query, inputs.key, inputs.value)
        guard q.rank == 4, k.rank == 4, v.rank == 4 else {
            throw CLIError("q, k, v must be [B, H, T, D]; got \(q.shape), \(k.shape), \(v.shape)")
        }
        guard k.shape[0] == q.shape[0], v.shape[0] == q.shape[0], k.shape[1] == v.shape[1], k.shape[2] == v.shape[2] else {
            throw CLIError("k \(k.shape) and v \(v.shape) must be [B, Hkv, Tk, ·] with the batch of q \(q.shape)")
        }
        guard k.shape[1] >= 1, q.shape[1] % k.shape[1] == 0 else {
            throw CLIError("\(k.shape[1]) key/value heads do not divide \(q.shape[1]) query heads")
        }
        if let heads, heads != q.shape[1] { throw CLIError("--heads \(heads) but q has \(q.shape[1]) heads") }
        if let keyValueHeads, keyValueHeads != k.shape[1] { throw CLIError("--kv-heads \(keyValueHeads) but k has \(k.shape[1]) heads") }
        let scoresShape = [q.shape[0], q.shape[1], q.shape[2], k.shape[2]]
        if ["scaled-dot", "dot", "cosine"].contains(score), q.shape[3] != k.shape[3] {
            throw CLIError("--score \(score) needs equal query and key sizes; got \(q.shape[3]) and \(k.shape[3])")
        }
        for (name, t) in [("mask", inputs.mask), ("bias", inputs.bias)] {
            guard let t else { continue }
            guard t.rank <= 4, Shape.broadcast(Array(repeating: 1, count: 4 - t.rank) + t.shape, scoresShape) == scoresShape else {
                throw CLIError("\(name) \(t.shape) does not broadcast to [B, H, Tq, Tk] = \(scoresShape)")
            }
        }
        guard temperature > 0, temperature.isFinite else { throw CLIError("--temperature must be positive, got \(temperature)") }
        guard (0..<1).contains(dropout) else { throw CLIError("--dropout must be in [0, 1), got \(dropout)") }
    }

    /// The library value for this spec and these inputs.
    func attention(for inputs: Inputs) throws -> Attention {
        try validate(inputs)
        let b = inputs.query.shape[0], tq = inputs.query.shape[2], tk = inputs.key.shape[2]
        var parts = try patterns.map { try Self.pattern($0, batch: b, queryLength: tq, keyLength: tk) }
        if let causal {
            switch causal {
            case "top-left": parts.append(.causal(.topLeft))
            case "bottom-right": parts.append(.causal(.bottomRight))
            default: throw CLIError("--causal takes top-left or bottom-right, got '\(causal)'")
            }
        }
        if let mask = inputs.mask { parts.append(.mask(mask)) }
        var biases: [any AttentionBias] = []
        if let bias = inputs.bias { biases.append(AdditiveBias(bias)) }
        let heads = inputs.query.shape[1]
        if let alibi {
            guard ["causal", "symmetric"].contains(alibi) else { throw CLIError("--alibi takes causal or symmetric, got '\(alibi)'") }
            biases.append(ALiBi(heads: heads, symmetric: alibi == "symmetric"))
        }
        if let relative {
            guard ["bidirectional", "causal"].contains(relative) else { throw CLIError("--relative takes bidirectional or causal, got '\(relative)'") }
            guard relativeBuckets >= 2, relativeMaxDistance >= 1 else { throw CLIError("--relative-buckets must be ≥ 2 and --relative-max-distance ≥ 1") }
            let table = inputs.parameters["relative.table"]
            if let table, table.shape != [relativeBuckets, heads] {
                throw CLIError("relative.table has shape \(table.shape); need [\(relativeBuckets), \(heads)]")
            }
            biases.append(RelativePositionBias(heads: heads, numBuckets: relativeBuckets, maxDistance: relativeMaxDistance,
                                               bidirectional: relative == "bidirectional", table: table, seed: seed))
        }
        var rotary: Rotary?
        if let rope {
            let d = inputs.query.shape[3]
            guard ["half", "interleaved"].contains(rope) else { throw CLIError("--rope takes half or interleaved, got '\(rope)'") }
            let r = rotaryDimension ?? d
            guard r >= 2, r % 2 == 0, r <= d, inputs.key.shape[3] == d else {
                throw CLIError("--rope needs an even rotary dimension ≤ D = \(d) (got \(r)) and equal q/k sizes")
            }
            guard ropeBase > 1, ropeBase.isFinite else { throw CLIError("--rope-base must be > 1") }
            rotary = Rotary(headDimension: d, base: ropeBase, convention: rope == "half" ? .halfSplit : .interleaved, rotaryDimension: r)
        }
        return Attention(score: try makeScore(inputs), temperature: temperature, biases: biases, positionTransform: rotary,
                         pattern: parts.isEmpty ? .full : parts.count == 1 ? parts[0] : .intersection(parts),
                         normalizer: try Self.normalizer(normalizer, seed: seed), dropout: dropout, dropoutSeed: seed)
    }

    private func makeScore(_ inputs: Inputs) throws -> Score {
        let (dq, dk) = (inputs.query.shape[3], inputs.key.shape[3])
        var generator = RandomGenerator(seed: seed)
        func parameter(_ name: String, _ shape: [Int]) throws -> Tensor {
            if let t = inputs.parameters[name] {
                guard t.shape == shape else { throw CLIError("\(name) has shape \(t.shape); --score \(score) needs \(shape)") }
                return t
            }
            return Tensor.randomNormal(shape, std: 1 / Float(shape[0]).squareRoot(), generator: &generator)
        }
        switch score {
        case "scaled-dot": return .scaledDot(scale: scale)
        case "dot": return .dot
        case "cosine": return .cosine(scale: scale ?? 1)
        case "bilinear": return .bilinear(weight: try parameter("score.weight", [dq, dk]))
        case "additive":
            let a = inputs.parameters["score.vector"]?.shape.first ?? dq
            return .additive(queryWeight: try parameter("score.query_weight", [dq, a]),
                             keyWeight: try parameter("score.key_weight", [dk, a]), vector: try parameter("score.vector", [a]))
        default: throw CLIError("--score takes scaled-dot, dot, bilinear, additive or cosine; got '\(score)'")
        }
    }

    /// `window:L,R`, `dilated:L,R,D`, `global:i,j,…`, `bigbird:block,window,global,random[,seed]`,
    /// `strided:S`, `fixed:B,C`, `block-diagonal:n,m,…`, `padding:n,m,…` (per batch),
    /// `full`; alternatives joined by `|` form a union.
    static func pattern(_ text: String, batch: Int, queryLength: Int, keyLength: Int) throws -> Pattern {
        let alternatives = text.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        if alternatives.count > 1 {
            return .union(try alternatives.map { try pattern($0, batch: batch, queryLength: queryLength, keyLength: keyLength) })
        }
        let pieces = text.split(separator: ":", maxSplits: 1).map(String.init)
        let name = pieces.first ?? ""
        let numbers: [Int] = try (pieces.count > 1 ? pieces[1] : "").split(separator: ",").map {
            guard let n = Int($0.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                throw CLIError("--pattern \(text): '\($0)' is not a non-negative integer")
            }
            return n
        }
        func expect(_ count: Int) throws {
            guard numbers.count == count else { throw CLIError("--pattern \(name) takes \(count) number(s), got '\(text)'") }
        }
        switch name {
        case "full": try expect(0); return .full
        case "window": try expect(2); return .slidingWindow(left: numbers[0], right: numbers[1])
        case "dilated":
            try expect(3)
            guard numbers[2] >= 1 else { throw CLIError("--pattern dilated: dilation must be ≥ 1") }
            return .dilatedWindow(left: numbers[0], right: numbers[1], dilation: numbers[2])
        case "global": return .global(tokens: numbers)
        case "bigbird":
            guard numbers.count == 4 || numbers.count == 5 else { throw CLIError("--pattern bigbird takes block,window,global,random[,seed]") }
            guard numbers[0] >= 1, numbers[1] % 2 == 1 else { throw CLIError("--pattern bigbird: block ≥ 1 and an odd window") }
            return .bigBird(blockSize: numbers[0], windowBlocks: numbers[1], globalBlocks: numbers[2], randomBlocks: numbers[3],
                            seed: UInt64(numbers.count == 5 ? numbers[4] : 0))
        case "strided":
            try expect(1)
            guard numbers[0] >= 1 else { throw CLIError("--pattern strided: stride must be ≥ 1") }
            return .strided(stride: numbers[0])
        case "fixed":
            try expect(2)
            guard numbers[0] >= 1, numbers[1] <= numbers[0] else { throw CLIError("--pattern fixed: need block ≥ 1 and summary ≤ block") }
            return .fixed(block: numbers[0], summary: numbers[1])
        case "block-diagonal":
            guard numbers.reduce(0, +) == queryLength, queryLength == keyLength else {
                throw CLIError("--pattern block-diagonal: segments sum to \(numbers.reduce(0, +)), need Tq = Tk = \(queryLength)")
            }
            return .blockDiagonal(lengths: numbers)
        case "padding":
            guard numbers.count == batch, numbers.allSatisfy({ $0 <= keyLength }) else {
                throw CLIError("--pattern padding: need \(batch) lengths ≤ \(keyLength), got '\(text)'")
            }
            return .keyPadding(lengths: numbers)
        default:
            throw CLIError("--pattern: unknown pattern '\(name)' (window, dilated, global, bigbird, strided, fixed, block-diagonal, padding, full)")
        }
    }
}
