import Foundation
import HeedAttention
import HeedTensor

/// `heed attend --layer bahdanau|luong`: the recurrent-era layers, which take
/// a decoder state instead of q/k/v.
///
/// Inputs: `state` [B, Dd] or [B, Tq, Dd], `encoder_outputs` [B, T, De],
/// optional `lengths` [B] (source lengths). Parameters, right-multiplied
/// ([in, out]): Bahdanau `state_weight` [Dd, A], `encoder_weight` [De, A],
/// `vector` [A]; Luong `score_weight` (general [Dd, De]; concat [Dd+De, A]
/// with `score_vector` [A]), `position_weight` [Dd, A] and `position_vector`
/// [A] (local-p), `output_weight` [De+Dd, Dc] (attentional state, optional).
/// Outputs: `context`, `weights`, and `attentional_state` / `aligned_position`
/// when the layer has them.
struct RecurrentLayerSpec {
    var layer: String
    var luongScore = "general"
    var window = "global"
    var stepOffset = 0

    func run(_ file: SafeTensorsFile, prefix: String) throws -> [String: Tensor] {
        func required(_ name: String) throws -> Tensor {
            guard file.contains(prefix + name) else { throw CLIError("--layer \(layer): input file has no tensor '\(prefix + name)'") }
            return try file.tensor(prefix + name)
        }
        func shaped(_ name: String, _ shape: [Int]) throws -> Tensor {
            let t = try required(name)
            guard t.shape == shape else { throw CLIError("\(name) has shape \(t.shape); expected \(shape)") }
            return t
        }
        let state = try required("state"), encoderOutputs = try required("encoder_outputs")
        guard state.rank == 2 || state.rank == 3, encoderOutputs.rank == 3, state.shape[0] == encoderOutputs.shape[0] else {
            throw CLIError("state must be [B, Dd] or [B, Tq, Dd] and encoder_outputs [B, T, De] with the same B; got \(state.shape), \(encoderOutputs.shape)")
        }
        let (b, t, de, dd) = (encoderOutputs.shape[0], encoderOutputs.shape[1], encoderOutputs.shape[2], state.shape.last!)
        var lengths: [Int]?
        if file.contains(prefix + "lengths") {
            // Integer or whole-number float lengths.
            let values: [Int]
            if try file.info(prefix + "lengths").dtype.isInteger {
                values = try file.indices(prefix + "lengths").values
            } else {
                let floats = try file.tensor(prefix + "lengths").scalars
                guard floats.allSatisfy({ $0 == $0.rounded() && Swift.abs($0) < 1e9 }) else { throw CLIError("lengths must be whole numbers") }
                values = floats.map { Int($0) }
            }
            guard values.count == b, values.allSatisfy({ (0...t).contains($0) }) else {
                throw CLIError("lengths must hold \(b) values in 0...\(t); got \(values)")
            }
            lengths = values
        }
        let output: RecurrentAttentionOutput
        switch layer {
        case "bahdanau":
            let vector = try required("vector")
            guard vector.rank == 1 else { throw CLIError("vector must be [A], got \(vector.shape)") }
            let a = vector.shape[0]
            let attention = BahdanauAttention(stateWeight: try shaped("state_weight", [dd, a]),
                                              encoderWeight: try shaped("encoder_weight", [de, a]), vector: vector)
            output = attention(state: state, encoderOutputs: encoderOutputs, sourceLengths: lengths)
        case "luong":
            let scoring: LuongAttention.Scoring
            switch luongScore {
            case "dot":
                guard dd == de else { throw CLIError("--luong-score dot needs Dd = De; got \(dd) and \(de)") }
                scoring = .dot
            case "general": scoring = .general(weight: try shaped("score_weight", [dd, de]))
            case "concat":
                let vector = try required("score_vector")
                guard vector.rank == 1 else { throw CLIError("score_vector must be [A], got \(vector.shape)") }
                scoring = .concat(weight: try shaped("score_weight", [dd + de, vector.shape[0]]), vector: vector)
            default: throw CLIError("--luong-score takes dot, general or concat; got '\(luongScore)'")
            }
            let parts = window.split(separator: ":").map(String.init)
            let halfWidth = parts.count == 2 ? Int(parts[1]) : nil
            let kind: LuongAttention.Window
            switch (parts.first ?? "", halfWidth) {
            case ("global", _) where parts.count == 1: kind = .global
            case ("monotonic", let d?) where d >= 0: kind = .monotonic(halfWidth: d)
            case ("predictive", let d?) where d >= 0:
                let vector = try required("position_vector")
                guard vector.rank == 1 else { throw CLIError("position_vector must be [A], got \(vector.shape)") }
                kind = .predictive(halfWidth: d, weight: try shaped("position_weight", [dd, vector.shape[0]]), vector: vector)
            default: throw CLIError("--window takes global, monotonic:D or predictive:D; got '\(window)'")
            }
            var outputWeight: Tensor?
            if file.contains(prefix + "output_weight") {
                let w = try required("output_weight")
                guard w.rank == 2, w.shape[0] == de + dd else { throw CLIError("output_weight must be [De+Dd, Dc]; got \(w.shape)") }
                outputWeight = w
            }
            guard stepOffset >= 0 else { throw CLIError("--step-offset must be ≥ 0") }
            let attention = LuongAttention(decoderSize: dd, encoderSize: de, scoring: scoring, window: kind, outputWeight: outputWeight)
            output = attention(state: state, encoderOutputs: encoderOutputs, sourceLengths: lengths, stepOffset: stepOffset)
        default:
            throw CLIError("--layer takes bahdanau or luong; got '\(layer)'")
        }
        var tensors = ["context": output.context, "weights": output.weights]
        tensors["attentional_state"] = output.attentionalState
        tensors["aligned_position"] = output.alignedPosition
        return tensors
    }
}
