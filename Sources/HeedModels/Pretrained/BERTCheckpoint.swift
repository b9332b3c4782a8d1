import Foundation
import HeedAttention
import HeedNN
import HeedTensor

extension BERTConfiguration {
    /// Reads a Hugging Face `config.json` of a BERT model (`BertConfig`).
    ///
    /// Required: `vocab_size`, `hidden_size`, `num_hidden_layers`,
    /// `num_attention_heads`, `intermediate_size` (integers ≥ 1, the heads
    /// dividing the hidden size). Optional, with `BertConfig`'s defaults:
    /// `hidden_act` ("gelu", or the tanh forms "gelu_new"/"gelu_pytorch_tanh"),
    /// `max_position_embeddings` (512), `type_vocab_size` (2), `layer_norm_eps`
    /// (1e-12), `pad_token_id` (0). `model_type`, when present, must be "bert",
    /// and `position_embedding_type` "absolute". Dropout rates and the rest
    /// are ignored: they do not change inference.
    ///
    /// - Throws: ``ModelError/missingFile(path:)``, ``ModelError/invalidJSON(file:reason:byteOffset:)``,
    ///   ``ModelError/invalidConfiguration(file:field:reason:)`` (missing,
    ///   ill-typed or impossible field) or ``ModelError/unsupported(file:what:)``.
    public init(huggingFaceConfig url: URL) throws(ModelError) {
        try self.init(ConfigurationFile(folder: url.deletingLastPathComponent(), name: url.lastPathComponent))
    }

    init(_ file: ConfigurationFile) throws(ModelError) {
        func positive(_ key: String, default value: Int? = nil) throws(ModelError) -> Int {
            try file.read { root throws(TokenizerError) in
                guard let field = try root.optionalMember(key) else {
                    if let value { return value }
                    throw try root.member(key).fail("missing")
                }
                let n = try field.integer()
                guard n >= 1 else { throw field.fail("must be at least 1, found \(n)") }
                return n
            }
        }
        func string(_ key: String) throws(ModelError) -> (String, JSONField)? {
            try file.read { root throws(TokenizerError) -> (String, JSONField)? in
                guard let field = try root.optionalMember(key) else { return nil }
                return (try field.string(), field)
            }
        }
        var c = BERTConfiguration()
        c.vocabularySize = try positive("vocab_size")
        c.hiddenSize = try positive("hidden_size")
        c.layers = try positive("num_hidden_layers")
        c.heads = try positive("num_attention_heads")
        c.intermediateSize = try positive("intermediate_size")
        c.maxPositions = try positive("max_position_embeddings", default: c.maxPositions)
        c.typeVocabularySize = try positive("type_vocab_size", default: c.typeVocabularySize)
        guard c.hiddenSize % c.heads == 0 else {
            throw .invalidConfiguration(file: file.name, field: "num_attention_heads",
                                        reason: "\(c.heads) heads do not divide hidden_size \(c.hiddenSize)")
        }
        c.padTokenID = try file.read { root throws(TokenizerError) in try root.optionalMember("pad_token_id")?.integer() ?? 0 }
        let epsilon = try file.read { root throws(TokenizerError) -> (Double, JSONField)? in
            guard let field = try root.optionalMember("layer_norm_eps") else { return nil }
            return (try field.number(), field)
        }
        if let (value, field) = epsilon {
            guard value > 0, value.isFinite, Float(value) > 0 else { throw file.fail(field, "must be a positive number, found \(value)") }
            c.layerNormEpsilon = Float(value)
        }
        if let (name, _) = try string("hidden_act") {
            switch name {
            case "gelu": c.activation = .none
            case "gelu_new", "gelu_pytorch_tanh": c.activation = .tanh
            default: throw .unsupported(file: file.name, what: "hidden_act \(GGUFError.quote(name))")
            }
        }
        if let (type, _) = try string("model_type"), type != "bert" {
            throw .unsupported(file: file.name, what: "model_type \(GGUFError.quote(type)) (only \"bert\" is read as BERT)")
        }
        if let (type, _) = try string("position_embedding_type"), type != "absolute" {
            throw .unsupported(file: file.name, what: "position_embedding_type \(GGUFError.quote(type))")
        }
        self = c
    }
}

/// Builds a ``BERTModel`` from a Hugging Face checkpoint: `config.json` and
/// `model.safetensors` in one folder.
///
/// The checkpoint's names are mapped here and nowhere else (N is the layer):
///
/// | Heed | checkpoint |
/// |---|---|
/// | `embeddings.word` / `.position` / `.tokenType` | `embeddings.word_embeddings.weight` / `position_embeddings` / `token_type_embeddings` |
/// | `embeddings.norm` | `embeddings.LayerNorm.{weight,bias}` |
/// | `layers[N].attention` query/key/value | `encoder.layer.N.attention.self.{query,key,value}.{weight,bias}` |
/// | `layers[N].attention` output | `encoder.layer.N.attention.output.dense.{weight,bias}` |
/// | `layers[N].attentionNorm` | `encoder.layer.N.attention.output.LayerNorm.{weight,bias}` |
/// | `layers[N].mlp.up` / `.down` | `encoder.layer.N.intermediate.dense` / `encoder.layer.N.output.dense` |
/// | `layers[N].mlpNorm` | `encoder.layer.N.output.LayerNorm.{weight,bias}` |
///
/// Checkpoints of task models (`BertForMaskedLM`, …) prefix every name with
/// `bert.`; that prefix is recognised. The pooler and task heads are not read.
public enum BERTCheckpoint {
    /// Reads `config.json` and `model.safetensors` from `folder`.
    ///
    /// - Throws: ``ModelError`` for a missing file, a bad configuration, a
    ///   malformed checkpoint, or a tensor that is missing or misshapen.
    public static func load(folder: URL) throws(ModelError) -> BERTModel {
        let configuration = try BERTConfiguration(ConfigurationFile(folder: folder, name: "config.json"))
        let url = folder.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: url.path) else { throw .missingFile(path: url.path) }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(url: url) } catch { throw .checkpoint(file: "model.safetensors", error) }
        return try load(file, configuration: configuration)
    }

    /// Builds the model from an open checkpoint whose shapes must match `configuration`.
    public static func load(_ file: SafeTensorsFile, configuration c: BERTConfiguration,
                            fileName: String = "model.safetensors") throws(ModelError) -> BERTModel {
        let prefix = !file.contains("embeddings.word_embeddings.weight") && file.contains("bert.embeddings.word_embeddings.weight")
            ? "bert." : ""
        func tensor(_ name: String, _ shape: [Int]) throws(ModelError) -> Tensor {
            let full = prefix + name
            guard file.contains(full) else { throw .missingTensor(file: fileName, name: full) }
            let t: Tensor
            do { t = try file.tensor(full) } catch { throw .checkpoint(file: fileName, error) }
            guard t.shape == shape else { throw .tensorShape(file: fileName, name: full, expected: shape, actual: t.shape) }
            return t
        }
        let (e, f) = (c.hiddenSize, c.intermediateSize)
        func linear(_ name: String, output: Int, input: Int) throws(ModelError) -> Linear {
            Linear(weight: try tensor(name + ".weight", [output, input]), bias: try tensor(name + ".bias", [output]))
        }
        func norm(_ name: String) throws(ModelError) -> LayerNorm {
            LayerNorm(weight: try tensor(name + ".weight", [e]), bias: try tensor(name + ".bias", [e]), epsilon: c.layerNormEpsilon)
        }
        let embeddings = BERTEmbeddings(
            word: Embedding(table: try tensor("embeddings.word_embeddings.weight", [c.vocabularySize, e])),
            position: Embedding(table: try tensor("embeddings.position_embeddings.weight", [c.maxPositions, e])),
            tokenType: Embedding(table: try tensor("embeddings.token_type_embeddings.weight", [c.typeVocabularySize, e])),
            norm: try norm("embeddings.LayerNorm"))
        var layers: [BERTLayer] = []
        for n in 0..<c.layers {
            let layer = "encoder.layer.\(n)."
            let (q, k, v) = (try linear(layer + "attention.self.query", output: e, input: e),
                             try linear(layer + "attention.self.key", output: e, input: e),
                             try linear(layer + "attention.self.value", output: e, input: e))
            let o = try linear(layer + "attention.output.dense", output: e, input: e)
            let attention = MultiHeadAttention(queryWeight: q.weight, keyWeight: k.weight, valueWeight: v.weight, outputWeight: o.weight,
                                               queryBias: q.bias, keyBias: k.bias, valueBias: v.bias, outputBias: o.bias,
                                               heads: c.heads)
            let mlp = BERTMLP(up: try linear(layer + "intermediate.dense", output: f, input: e),
                              down: try linear(layer + "output.dense", output: e, input: f),
                              activation: c.activation)
            layers.append(BERTLayer(attention: attention, attentionNorm: try norm(layer + "attention.output.LayerNorm"),
                                    mlp: mlp, mlpNorm: try norm(layer + "output.LayerNorm")))
        }
        return BERTModel(configuration: c, embeddings: embeddings, layers: layers)
    }
}
