import ArgumentParser
import Foundation
import HeedAttention
import HeedTensor

/// `heed attend`: any catalogue configuration on tensors from a file.
struct Attend: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an attention configuration on q, k, v read from a safetensors file.",
        discussion: """
            Input tensors (f32, f16 or bf16): q [B, H, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv];
            optional mask (1 = attend, broadcastable to [B, H, Tq, Tk]) and bias (additive, same
            broadcasting); parameters for learned scores under score.weight (bilinear [D, D]),
            score.query_weight / score.key_weight / score.vector (additive), else drawn from --seed.
            Output: out [B, H, Tq, Dv] and, with --weights, weights [B, H, Tq, Tk].
            Examples:
              heed attend --input qkv.safetensors --output out.safetensors
              heed attend --input qkv.safetensors --output out.safetensors --causal bottom-right --weights
              heed attend --input qkv.safetensors --output out.safetensors --pattern window:64,0 --pattern "global:0|window:4,4"
              heed attend --input fixtures.safetensors --prefix sdpa_gqa. --output out.safetensors --heads 6 --kv-heads 2
              heed attend --input qkv.safetensors --output out.safetensors --rope half --alibi causal --causal bottom-right
            With --layer bahdanau|luong the file holds state [B, (Tq,) Dd], encoder_outputs [B, T, De],
            optional lengths [B] and the layer's weights (state_weight, encoder_weight, vector; or
            score_weight, score_vector, position_weight, position_vector, output_weight); the output
            holds context, weights and, when present, attentional_state and aligned_position.
              heed attend --layer luong --luong-score general --window predictive:3 --input in.safetensors --output out.safetensors
            With --layer multihead the file holds x [B, Tq, E], key, value and nn.MultiheadAttention's
            weights (in_proj_weight or q/k/v_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias):
              heed attend --layer multihead --heads 4 --pattern padding:6,3 --input mha.safetensors --output out.safetensors
            """
    )

    @Option(help: "Safetensors file with q, k, v (and optional mask, bias).") var input: String
    @Option(help: "Where to write out (and weights); written atomically.") var output: String
    @Option(help: "Prefix of the input tensor names (e.g. 'case.' for 'case.q').") var prefix = ""
    @Option(help: "scaled-dot, dot, bilinear, additive or cosine.") var score = "scaled-dot"
    @Option(help: "Score scale (scaled-dot default 1/√D; cosine default 1).") var scale: Float?
    @Option(help: "Temperature τ dividing the scores.") var temperature: Float = 1
    @Option(help: "softmax, sparsemax, entmax15, divisive:σ[,n[,rectified]], local:r[,σ[,n[,rectified]]], hard-argmax or hard-sampled.")
    var normalizer = "softmax"
    @Option(help: "A sparsity pattern (repeat to intersect; join with | to unite).") var pattern: [String] = []
    @Option(help: "Causal mask alignment: top-left or bottom-right.") var causal: String?
    @Option(help: "Expected query heads (checked against q).") var heads: Int?
    @Option(name: .customLong("kv-heads"), help: "Expected key/value heads (checked against k).") var keyValueHeads: Int?
    @Option(help: "Dropout probability on the weights.") var dropout: Float = 0
    @Option(help: "Seed for dropout and for parameters not in the file.") var seed: UInt64 = 0
    @Option(help: "Rotary embeddings on q and k: half (Llama/NeoX) or interleaved (GPT-J).") var rope: String?
    @Option(name: .customLong("rope-base"), help: "RoPE base θ.") var ropeBase: Double = 10000
    @Option(name: .customLong("rotary-dimension"), help: "Rotate only the first R features (even).") var rotaryDimension: Int?
    @Option(help: "ALiBi biases: causal or symmetric.") var alibi: String?
    @Option(help: "T5 relative-position buckets: bidirectional or causal (table from the file or --seed).") var relative: String?
    @Option(name: .customLong("relative-buckets"), help: "T5 bucket count.") var relativeBuckets = 32
    @Option(name: .customLong("relative-max-distance"), help: "T5 maximum distance.") var relativeMaxDistance = 128
    @Flag(help: "Also write the attention weights.") var weights = false
    @Option(help: "dense, or an approximation: performer (FAVOR+), rfa, elu (linear attention) or linformer.") var engine = "dense"
    @Option(help: "Random features m for performer/rfa when the file has no projection.") var features: Int?
    @Flag(help: "i.i.d. instead of orthogonal random features.") var iid = false
    @Option(help: "RFA kernel width σ (default: the file's sigma, else 1).") var sigma: Float?
    @Option(help: "Positions per chunk of the causal prefix sums.") var chunk = 64
    @Option(name: .customLong("projected-length"), help: "Linformer k when the file has no e/f.") var projectedLength: Int?
    @Option(help: "A layer instead of q/k/v attention: multihead (nn.MultiheadAttention weights), bahdanau or luong (see below).")
    var layer: String?
    @Option(name: .customLong("luong-score"), help: "Luong score: dot, general or concat.") var luongScore = "general"
    @Option(help: "Luong window: global, monotonic:D (local-m) or predictive:D (local-p).") var window = "global"
    @Option(name: .customLong("step-offset"), help: "Luong local-m: position of the first decoder step.") var stepOffset = 0

    var spec: AttentionSpec {
        AttentionSpec(score: score, scale: scale, temperature: temperature, normalizer: normalizer, patterns: pattern,
                      causal: causal, heads: heads, keyValueHeads: keyValueHeads, dropout: dropout, seed: seed,
                      rope: rope, ropeBase: ropeBase, rotaryDimension: rotaryDimension, alibi: alibi, relative: relative,
                      relativeBuckets: relativeBuckets, relativeMaxDistance: relativeMaxDistance, engine: engine,
                      features: features, iid: iid, sigma: sigma, chunk: chunk, projectedLength: projectedLength)
    }

    /// Every named output of the configuration on the file's inputs.
    func compute(_ file: SafeTensorsFile) throws -> [String: Tensor] {
        if layer == "multihead" {
            return try MultiHeadLayerSpec(heads: heads, spec: spec).run(file, prefix: prefix)
        }
        if let layer {
            return try Tensor.withoutGrad {
                try RecurrentLayerSpec(layer: layer, luongScore: luongScore, window: window, stepOffset: stepOffset).run(file, prefix: prefix)
            }
        }
        if !file.contains(prefix + "q"), file.contains(prefix + "scores") {
            return try normalizeScores(file)
        }
        let inputs = try AttentionSpec.readInputs(file, prefix: prefix)
        if engine != "dense" {
            return ["out": try Tensor.withoutGrad { try spec.runLinearEngine(inputs) }]
        }
        let attention = try spec.attention(for: inputs)
        let result = Tensor.withoutGrad { attention(query: inputs.query, key: inputs.key, value: inputs.value) }
        return ["out": result.output, "weights": result.weights]
    }

    /// Scores-only input (`scores` [.., Tq, Tk], optional `mask`): the
    /// pattern and normalizer stages alone; writes `weights`.
    private func normalizeScores(_ file: SafeTensorsFile) throws -> [String: Tensor] {
        let scores = try file.tensor(prefix + "scores")
        guard scores.rank >= 2 else { throw CLIError("scores must be [.., Tq, Tk], got \(scores.shape)") }
        var mask: Tensor?
        if file.contains(prefix + "mask") {
            let m = try file.tensor(prefix + "mask")
            guard m.rank <= scores.rank, Shape.broadcast(m.shape, scores.shape) == scores.shape else {
                throw CLIError("mask \(m.shape) does not broadcast to scores \(scores.shape)")
            }
            mask = m.greater(Tensor(scalar: 0))
        }
        let normalizer = try AttentionSpec.normalizer(spec.normalizer, seed: seed)
        return ["weights": Tensor.withoutGrad { normalizer(scores, mask: mask).weights }]
    }

    func run() throws {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(url: URL(fileURLWithPath: input)) } catch {
            throw CLIError("cannot read --input \(input): \(error)")
        }
        var tensors = try compute(file)
        if !weights, tensors["out"] != nil { tensors["weights"] = nil }   // layers without `out` keep their weights
        do { try SafeTensors.write(tensors, to: URL(fileURLWithPath: output)) } catch {
            throw CLIError("cannot write --output \(output): \(error)")
        }
        print("wrote " + tensors.keys.sorted().map { "\($0) \(tensors[$0]!.shape)" }.joined(separator: ", ") + " to \(output)")
    }
}
