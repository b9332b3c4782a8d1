import Foundation
import XCTest
import HeedNN
import HeedTensor
import HeedTestSupport
@testable import HeedModels

/// The BERT loader and the sentence-embedding pipeline on a tiny
/// sentence-transformers folder written here (random weights under Hugging
/// Face's names, the small WordPiece tokenizer of wordpiece_small.json), and
/// every way such a folder can be wrong. No fetched model needed.
final class MiniLMLoaderTests: XCTestCase {
    let configuration = BERTConfiguration(vocabularySize: 422, hiddenSize: 12, layers: 2, heads: 3, intermediateSize: 20,
                                          maxPositions: 16, typeVocabularySize: 2, layerNormEpsilon: 1e-12)
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("heed-minilm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    let configJSON = """
        {"architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": 12, "intermediate_size": 20,
         "layer_norm_eps": 1e-12, "max_position_embeddings": 16, "model_type": "bert", "num_attention_heads": 3,
         "num_hidden_layers": 2, "pad_token_id": 0, "position_embedding_type": "absolute", "type_vocab_size": 2,
         "vocab_size": 422, "hidden_dropout_prob": 0.1}
        """

    func write(_ text: String, _ name: String) throws {
        try Data(text.utf8).write(to: folder.appendingPathComponent(name))
    }

    /// The model's tensors under the checkpoint's names.
    func checkpoint(_ model: BERTModel, prefix: String = "") -> [String: Tensor] {
        let e = model.embeddings
        var tensors = ["embeddings.word_embeddings.weight": e.word.table, "embeddings.position_embeddings.weight": e.position.table,
                       "embeddings.token_type_embeddings.weight": e.tokenType.table,
                       "embeddings.LayerNorm.weight": e.norm.weight, "embeddings.LayerNorm.bias": e.norm.bias!]
        for (n, layer) in model.layers.enumerated() {
            let p = "encoder.layer.\(n)."
            let a = layer.attention
            tensors[p + "attention.self.query.weight"] = a.queryWeight
            tensors[p + "attention.self.query.bias"] = a.queryBias!
            tensors[p + "attention.self.key.weight"] = a.keyWeight
            tensors[p + "attention.self.key.bias"] = a.keyBias!
            tensors[p + "attention.self.value.weight"] = a.valueWeight
            tensors[p + "attention.self.value.bias"] = a.valueBias!
            tensors[p + "attention.output.dense.weight"] = a.outputWeight
            tensors[p + "attention.output.dense.bias"] = a.outputBias!
            tensors[p + "attention.output.LayerNorm.weight"] = layer.attentionNorm.weight
            tensors[p + "attention.output.LayerNorm.bias"] = layer.attentionNorm.bias!
            tensors[p + "intermediate.dense.weight"] = layer.mlp.up.weight
            tensors[p + "intermediate.dense.bias"] = layer.mlp.up.bias!
            tensors[p + "output.dense.weight"] = layer.mlp.down.weight
            tensors[p + "output.dense.bias"] = layer.mlp.down.bias!
            tensors[p + "output.LayerNorm.weight"] = layer.mlpNorm.weight
            tensors[p + "output.LayerNorm.bias"] = layer.mlpNorm.bias!
        }
        tensors["pooler.dense.weight"] = Tensor.zeros([12, 12])
        return Dictionary(uniqueKeysWithValues: tensors.map { (prefix + $0.key, $0.value) })
    }

    /// A complete folder: returns the model whose weights it holds.
    @discardableResult
    func makeFolder(prefix: String = "", normalize: Bool = true, maxSeqLength: Int = 10) throws -> BERTModel {
        let model = BERTModel(configuration: configuration, seed: 11)
        try SafeTensors.write(checkpoint(model, prefix: prefix), to: folder.appendingPathComponent("model.safetensors"))
        try write(configJSON, "config.json")
        try Data(contentsOf: modelFixtures().appendingPathComponent("wordpiece_small.json"))
            .write(to: folder.appendingPathComponent("tokenizer.json"))
        let modules = [#"{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}"#,
                       #"{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}"#]
            + (normalize ? [#"{"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}"#] : [])
        try write("[" + modules.joined(separator: ", ") + "]", "modules.json")
        try write(#"{"max_seq_length": \#(maxSeqLength), "do_lower_case": false}"#, "sentence_bert_config.json")
        try write(#"{"word_embedding_dimension": 12, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false}"#,
                  "1_Pooling/config.json")
        return model
    }

    func testEmbeddingsAreTheMeanOfRealTokensNormalised() throws {
        let model = try makeFolder()
        let embedder = try SentenceEmbedder(folder: folder)
        XCTAssertEqual(embedder.model.configuration, configuration)
        XCTAssertEqual(embedder.maxSequenceLength, 10)
        XCTAssertEqual(embedder.pooling, .mean)
        XCTAssertTrue(embedder.normalizes)
        let texts = ["hello world", "", "the quick brown fox jumps over the lazy dog again and again", "a b"]
        let embeddings = try embedder.embed(texts, batchSize: 3)
        for (text, embedding) in zip(texts, embeddings) {
            let ids = try embedder.tokenizer.encode(text, maxLength: 10).ids
            XCTAssertLessThanOrEqual(ids.count, 10)
            let hidden = Tensor.withoutGrad { model(IndexTensor(ids, shape: [1, ids.count])) }   // [1, T, E]
            let mean = hidden.mean(axis: 1).reshaped([12])
            let expected = mean * (1 / mean.square().sum().item().squareRoot())
            assertClose(embedding, expected.scalars, rtol: 1e-5, atol: 1e-6, text)
            XCTAssertEqual(try embedder.embed([text], batchSize: 1)[0].count, 12)
            assertClose(try embedder.embed([text])[0], embedding, rtol: 0, atol: 1e-6, "alone vs batched: \(text)")
        }
    }

    func testWithoutNormalizeOrModulesAndWithBertPrefix() throws {
        let model = try makeFolder(prefix: "bert.", normalize: false)
        let plain = try SentenceEmbedder(folder: folder)
        XCTAssertFalse(plain.normalizes)
        let ids = try plain.tokenizer.encode("hello", maxLength: 10).ids
        let mean = Tensor.withoutGrad { model(IndexTensor(ids, shape: [1, ids.count])) }.mean(axis: 1)
        assertClose(try plain.embed(["hello"])[0], mean.scalars, rtol: 1e-5, atol: 1e-6)
        // No modules.json: a plain model, mean pooling, no normalisation, the tokenizer's own truncation.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("modules.json"))
        let bare = try SentenceEmbedder(folder: folder)
        XCTAssertFalse(bare.normalizes)
        XCTAssertEqual(bare.pooling, .mean)
        XCTAssertEqual(bare.maxSequenceLength, bare.tokenizer.configuredMaxLength ?? 16)
    }

    func testConfigurationErrorsNameTheField() throws {
        let url = folder.appendingPathComponent("config.json")
        func error(_ json: String) -> ModelError? {
            try? Data(json.utf8).write(to: url)
            do { _ = try BERTConfiguration(huggingFaceConfig: url); return nil } catch { return error }
        }
        let base = #""vocab_size": 420, "hidden_size": 12, "num_hidden_layers": 2, "intermediate_size": 20"#
        XCTAssertEqual(error("{\(base)}"), .invalidConfiguration(file: "config.json", field: "num_attention_heads", reason: "missing"))
        XCTAssertEqual(error(#"{\#(base), "num_attention_heads": "3"}"#),
                       .invalidConfiguration(file: "config.json", field: "num_attention_heads", reason: "expected an integer, found the string \"3\""))
        XCTAssertEqual(error(#"{\#(base), "num_attention_heads": 5}"#),
                       .invalidConfiguration(file: "config.json", field: "num_attention_heads", reason: "5 heads do not divide hidden_size 12"))
        XCTAssertEqual(error(#"{\#(base), "num_attention_heads": 0}"#),
                       .invalidConfiguration(file: "config.json", field: "num_attention_heads", reason: "must be at least 1, found 0"))
        XCTAssertEqual(error(#"{\#(base), "num_attention_heads": 3, "layer_norm_eps": -1}"#),
                       .invalidConfiguration(file: "config.json", field: "layer_norm_eps", reason: "must be a positive number, found -1.0"))
        XCTAssertEqual(error(#"{\#(base), "num_attention_heads": 3, "hidden_act": "relu"}"#),
                       .unsupported(file: "config.json", what: "hidden_act \"relu\""))
        XCTAssertEqual(error(#"{\#(base), "num_attention_heads": 3, "position_embedding_type": "relative_key"}"#),
                       .unsupported(file: "config.json", what: "position_embedding_type \"relative_key\""))
        if case .invalidJSON(file: "config.json", _, _)? = error("{\(base)") {} else { XCTFail("truncated JSON") }
        XCTAssertEqual(error("[]"), .invalidConfiguration(file: "config.json", field: "", reason: "expected an object, found an array"))
        let tanh = try XCTUnwrap({ () -> BERTConfiguration? in
            try? Data(#"{\#(base), "num_attention_heads": 3, "hidden_act": "gelu_new"}"#.utf8).write(to: url)
            return try? BERTConfiguration(huggingFaceConfig: url)
        }())
        XCTAssertEqual(tanh.activation, .tanh)
        XCTAssertEqual(tanh.layerNormEpsilon, 1e-12)   // BertConfig's defaults for absent fields
        XCTAssertEqual(tanh.maxPositions, 512)
        XCTAssertThrowsError(try BERTConfiguration(huggingFaceConfig: folder.appendingPathComponent("none.json"))) {
            XCTAssertEqual($0 as? ModelError, .missingFile(path: self.folder.appendingPathComponent("none.json").path))
        }
    }

    func testCheckpointAndModuleErrors() throws {
        let model = try makeFolder()
        func error() -> ModelError? {
            do { _ = try SentenceEmbedder(folder: folder); return nil } catch { return error }
        }
        XCTAssertNil(error())
        // A tensor missing, then one of the wrong shape.
        var tensors = checkpoint(model)
        tensors["encoder.layer.1.output.dense.bias"] = nil
        try SafeTensors.write(tensors, to: folder.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(error(), .missingTensor(file: "model.safetensors", name: "encoder.layer.1.output.dense.bias"))
        tensors["encoder.layer.1.output.dense.bias"] = Tensor.zeros([13])
        try SafeTensors.write(tensors, to: folder.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(error(), .tensorShape(file: "model.safetensors", name: "encoder.layer.1.output.dense.bias", expected: [12], actual: [13]))
        try makeFolder()
        // Modules Heed does not implement, and impossible values.
        try write(#"[{"path": "", "type": "sentence_transformers.models.Transformer"}, {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}, {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]"#, "modules.json")
        XCTAssertEqual(error(), .unsupported(file: "modules.json", what: "module 2 \"sentence_transformers.models.Dense\" (Heed reads Transformer, Pooling, Normalize)"))
        try makeFolder()
        try write(#"{"pooling_mode_max_tokens": true}"#, "1_Pooling/config.json")
        XCTAssertEqual(error(), .unsupported(file: "1_Pooling/config.json", what: "pooling pooling_mode_max_tokens"))
        try write(#"{"pooling_mode_mean_tokens": false}"#, "1_Pooling/config.json")
        XCTAssertEqual(error(), .invalidConfiguration(file: "1_Pooling/config.json", field: "pooling_mode_mean_tokens", reason: "no pooling mode is set"))
        try makeFolder(maxSeqLength: 100)
        XCTAssertEqual(error(), .invalidConfiguration(file: "sentence_bert_config.json", field: "max_seq_length",
                                                      reason: "100 is outside 2...16 (the model's positions)"))
        try FileManager.default.removeItem(at: folder.appendingPathComponent("tokenizer.json"))
        XCTAssertEqual(error(), .missingFile(path: folder.appendingPathComponent("tokenizer.json").path))
        try write("{}", "tokenizer.json")
        if case .tokenizer? = error() {} else { XCTFail("a malformed tokenizer.json: \(String(describing: error()))") }
    }
}
