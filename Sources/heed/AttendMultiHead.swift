import Foundation
import HeedAttention
import HeedTensor

/// `heed attend --layer multihead`: `nn.MultiheadAttention`'s layer with the
/// weights in the file, in PyTorch's names: `x` [B, Tq, E], `key` [B, Tk, Ek],
/// `value` [B, Tk, Ev]; `in_proj_weight` [3E, E] (or `q_proj_weight`,
/// `k_proj_weight`, `v_proj_weight`), optional `in_proj_bias` [3E] with
/// `out_proj.bias`, and `out_proj.weight` [E, E]. `--heads` is required;
/// `--pattern` and `--causal` apply to the scores. Outputs `out` [B, Tq, E]
/// and per-head `weights` [B, H, Tq, Tk].
struct MultiHeadLayerSpec {
    var heads: Int?
    var spec: AttentionSpec

    func run(_ file: SafeTensorsFile, prefix: String) throws -> [String: Tensor] {
        func required(_ name: String) throws -> Tensor {
            guard file.contains(prefix + name) else { throw CLIError("--layer multihead: input file has no tensor '\(prefix + name)'") }
            return try file.tensor(prefix + name)
        }
        guard let heads, heads >= 1 else { throw CLIError("--layer multihead needs --heads H") }
        let x = try required("x"), key = try required("key"), value = try required("value")
        guard x.rank == 3, key.rank == 3, value.rank == 3, key.shape[0] == x.shape[0], value.shape[0] == x.shape[0],
              key.shape[1] == value.shape[1] else {
            throw CLIError("x [B, Tq, E], key [B, Tk, Ek] and value [B, Tk, Ev] disagree: \(x.shape), \(key.shape), \(value.shape)")
        }
        let (e, ek, ev) = (x.shape[2], key.shape[2], value.shape[2])
        guard e % heads == 0 else { throw CLIError("embedding size \(e) is not divisible by --heads \(heads)") }
        func shaped(_ name: String, _ shape: [Int]) throws -> Tensor {
            let t = try required(name)
            guard t.shape == shape else { throw CLIError("\(name) has shape \(t.shape); expected \(shape)") }
            return t
        }
        let hasBias = file.contains(prefix + "in_proj_bias")
        let (b, tq, tk) = (x.shape[0], x.shape[1], key.shape[1])
        var parts = try spec.patterns.map { try AttentionSpec.pattern($0, batch: b, queryLength: tq, keyLength: tk) }
        if let causal = spec.causal {
            guard ["top-left", "bottom-right"].contains(causal) else { throw CLIError("--causal takes top-left or bottom-right, got '\(causal)'") }
            parts.append(.causal(causal == "top-left" ? .topLeft : .bottomRight))
        }
        var layer = MultiHeadAttention(embedDimension: e, heads: heads, keyDimension: ek, valueDimension: ev, bias: hasBias,
                                       attention: Attention(pattern: parts.isEmpty ? .full : .intersection(parts)))
        if file.contains(prefix + "in_proj_weight") {
            let w = try shaped("in_proj_weight", [3 * e, e]).split(count: 3, axis: 0)
            (layer.queryWeight, layer.keyWeight, layer.valueWeight) = (w[0], w[1], w[2])
        } else {
            layer.queryWeight = try shaped("q_proj_weight", [e, e])
            layer.keyWeight = try shaped("k_proj_weight", [e, ek])
            layer.valueWeight = try shaped("v_proj_weight", [e, ev])
        }
        if hasBias {
            let bias = try shaped("in_proj_bias", [3 * e]).split(count: 3, axis: 0)
            (layer.queryBias, layer.keyBias, layer.valueBias) = (bias[0], bias[1], bias[2])
            layer.outputBias = try shaped("out_proj.bias", [e])
        }
        layer.outputWeight = try shaped("out_proj.weight", [e, e])
        let result = Tensor.withoutGrad { layer(x, key: key, value: value) }
        return ["out": result.output, "weights": result.weights]
    }
}
