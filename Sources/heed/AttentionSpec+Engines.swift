import Foundation
import HeedAttention
import HeedTensor

/// The normalizers and the linear / low-rank engines as `heed attend` spells them.
extension AttentionSpec {
    /// `softmax`, `sparsemax`, `entmax15`, `divisive:σ[,n[,rectified]]`,
    /// `local:r[,σ[,n[,rectified]]]`, `hard-argmax`, `hard-sampled` (seeded by --seed).
    static func normalizer(_ text: String, seed: UInt64) throws -> Normalizer {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        let arguments = parts.count > 1 ? parts[1].split(separator: ",").map(String.init) : []
        func number(_ i: Int, _ fallback: Float) throws -> Float {
            guard i < arguments.count else { return fallback }
            guard let value = Float(arguments[i]), value.isFinite, value >= 0 else {
                throw CLIError("--normalizer \(text): '\(arguments[i])' is not a non-negative number")
            }
            return value
        }
        func drive(_ i: Int) throws -> Normalizer.Drive {
            guard i < arguments.count else { return .exponential }
            switch arguments[i] {
            case "exponential": return .exponential
            case "rectified": return .rectified
            default: throw CLIError("--normalizer \(text): drive must be exponential or rectified")
            }
        }
        switch parts[0] {
        case "softmax" where arguments.isEmpty: return .softmax
        case "sparsemax" where arguments.isEmpty: return .sparsemax
        case "entmax15" where arguments.isEmpty: return .entmax15
        case "hard-argmax" where arguments.isEmpty: return .hardArgmax
        case "hard-sampled" where arguments.isEmpty: return .hardSampled(seed: seed)
        case "divisive" where arguments.count <= 3:
            let (sigma, exponent, kind) = (try number(0, 1), try number(1, 1), try drive(2))
            guard kind == .exponential || exponent >= 1 else { throw CLIError("--normalizer \(text): rectified drive needs n ≥ 1") }
            return .divisive(semiSaturation: sigma, exponent: exponent, drive: kind)
        case "local" where (1...4).contains(arguments.count):
            guard let radius = Int(arguments[0]), radius >= 0 else { throw CLIError("--normalizer \(text): radius must be a whole number ≥ 0") }
            let (sigma, exponent, kind) = (try number(1, 1), try number(2, 1), try drive(3))
            guard kind == .exponential || exponent >= 1 else { throw CLIError("--normalizer \(text): rectified drive needs n ≥ 1") }
            return .localPools(radius: radius, semiSaturation: sigma, exponent: exponent, drive: kind)
        default:
            throw CLIError("--normalizer: unknown or malformed '\(text)' (softmax, sparsemax, entmax15, divisive:σ,n[,rectified], local:r,σ,n[,rectified], hard-argmax, hard-sampled)")
        }
    }

    /// Runs a linear or low-rank engine (`--engine performer|rfa|elu|linformer`).
    func runLinearEngine(_ inputs: Inputs) throws -> Tensor {
        try validate(inputs)
        let (q, k, v) = (inputs.query, inputs.key, inputs.value)
        guard patterns.isEmpty, inputs.mask == nil, inputs.bias == nil, alibi == nil, relative == nil, rope == nil,
              score == "scaled-dot", scale == nil, temperature == 1, normalizer == "softmax" else {
            throw CLIError("--engine \(engine) approximates plain softmax attention: patterns, masks, biases, positions, scores and normalizers are for --engine dense")
        }
        var causal = false
        if let mode = self.causal {
            guard mode == "bottom-right" || (mode == "top-left" && q.shape[2] == k.shape[2]) else {
                throw CLIError("--engine \(engine) is causal with bottom-right alignment only (--causal bottom-right)")
            }
            guard engine != "linformer" else { throw CLIError("--engine linformer has no causal form") }
            guard k.shape[2] >= q.shape[2] else { throw CLIError("a causal linear engine needs Tk ≥ Tq") }
            causal = true
        }
        guard chunk >= 1 else { throw CLIError("--chunk must be ≥ 1") }
        let d = q.shape[3]
        func projection() throws -> Tensor? {
            guard let p = inputs.parameters["projection"] else { return nil }
            guard p.rank == 2, p.shape[1] == d, p.shape[0] >= 1 else { throw CLIError("projection must be [m, \(d)], got \(p.shape)") }
            return p
        }
        func featureCount() throws -> Int {
            guard let features, features >= 1 else { throw CLIError("--engine \(engine) needs --features M (or a projection in the file)") }
            return features
        }
        switch engine {
        case "performer":
            let performer = try projection().map { Performer(projection: $0, orthogonal: !iid) }
                ?? Performer(features: try featureCount(), headDimension: d, orthogonal: !iid, seed: seed)
            return performer(query: q, key: k, value: v, causal: causal, chunkSize: chunk)
        case "rfa":
            let sigma = self.sigma ?? inputs.parameters["sigma"]?.scalars.first ?? 1
            guard sigma > 0, sigma.isFinite else { throw CLIError("RFA σ must be positive") }
            var gate: RandomFeatureAttention.Gate?
            var gateInput: Tensor?
            if let weight = inputs.parameters["gate_weight"], let bias = inputs.parameters["gate_bias"], let x = inputs.parameters["gate_input"] {
                guard causal else { throw CLIError("the RFA gate (gate_weight, gate_bias, gate_input) needs --causal bottom-right") }
                let h = q.shape[1]
                guard weight.rank == 2, weight.shape[0] == h, bias.shape == [h], x.rank == 4, x.shape[0] == q.shape[0],
                      [1, h].contains(x.shape[1]), x.shape[2] == k.shape[2], x.shape[3] == weight.shape[1] else {
                    throw CLIError("gate_weight [H, Dx], gate_bias [H] and gate_input [B, H|1, Tk, Dx] disagree: \(weight.shape), \(bias.shape), \(x.shape)")
                }
                gate = RandomFeatureAttention.Gate(weight: weight, bias: bias)
                gateInput = x
            }
            let rfa = try projection().map { RandomFeatureAttention(projection: $0, sigma: sigma, gate: gate) }
                ?? RandomFeatureAttention(features: try featureCount(), headDimension: d, sigma: sigma, orthogonal: !iid, seed: seed, gate: gate)
            return rfa(query: q, key: k, value: v, causal: causal, gateInput: gateInput, chunkSize: chunk)
        case "elu":
            return LinearAttention()(query: q, key: k, value: v, causal: causal, chunkSize: chunk)
        case "linformer":
            let n = k.shape[2], hkv = k.shape[1]
            let linformer: Linformer
            if let e = inputs.parameters["e"] {
                let f = inputs.parameters["f"] ?? e
                for p in [e, f] {
                    guard (p.rank == 2 && p.shape[1] == n) || (p.rank == 3 && p.shape[0] == hkv && p.shape[2] == n), p.shape == e.shape else {
                        throw CLIError("Linformer projections must be [k, \(n)] or [\(hkv), k, \(n)] and alike; got \(e.shape), \(f.shape)")
                    }
                }
                linformer = Linformer(keyProjection: e, valueProjection: inputs.parameters["f"] == nil ? e : f)
            } else {
                guard let projectedLength, projectedLength >= 1 else { throw CLIError("--engine linformer needs --projected-length K (or e/f in the file)") }
                linformer = Linformer(sequenceLength: n, projectedLength: projectedLength, seed: seed)
            }
            return linformer(query: q, key: k, value: v)
        default:
            throw CLIError("--engine takes dense, performer, rfa, elu or linformer; got '\(engine)'")
        }
    }
}
