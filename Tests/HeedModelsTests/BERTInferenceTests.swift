import CHeedKernels
import XCTest
import HeedNN
import HeedTensor
import HeedTestSupport
@testable import HeedModels

/// BERTInference (the fast path: packed unpadded sequences, stacked QKV,
/// biases and residuals under sgemm, fused LayerNorm/GELU kernels) against
/// HeedNN's BERTModel (the composed reference) on the same random weights.
final class BERTInferenceTests: XCTestCase {
    override func tearDown() {
        heed_kernels_force_portable(0)
        super.tearDown()
    }

    /// A small BERT whose every parameter (biases and norms included) is random.
    func randomModel(activation: Tensor.GELUApproximation) -> BERTModel {
        let configuration = BERTConfiguration(vocabularySize: 422, hiddenSize: 12, layers: 2, heads: 3, intermediateSize: 20,
                                              activation: activation, maxPositions: 40, typeVocabularySize: 2,
                                              layerNormEpsilon: 1e-12)
        let model = BERTModel(configuration: configuration, seed: 3)
        for (index, parameter) in model.parameters.enumerated() {
            let values = Tensor.randomNormal(parameter.shape, std: 0.5, seed: 100 + UInt64(index)).scalars
            parameter.withUnsafeMutableScalars { _ = $0.update(from: values) }
        }
        return model
    }

    func testPackedSequencesEqualTheReferenceOneByOne() {
        for activation in [Tensor.GELUApproximation.none, .tanh] {
            let model = randomModel(activation: activation)
            let fast = BERTInference(model: model)!
            let lengths = [1, 7, 33, 2, 40]                          // T = 1 and the full position table included
            var generator = RandomGenerator(seed: 5)
            let ids = lengths.map { (0 ..< $0).map { _ in generator.nextInt(below: 50) } }
            let typeIds = lengths.map { (0 ..< $0).map { _ in generator.nextInt(below: 2) } }
            for portable in [false, true] {
                heed_kernels_force_portable(portable ? 1 : 0)
                let (states, offsets) = fast.hiddenStates(ids: ids, typeIds: typeIds)
                XCTAssertEqual(offsets, [0, 1, 8, 41, 43, 83])
                for (s, sequence) in ids.enumerated() {
                    let reference = Tensor.withoutGrad {
                        model(IndexTensor(sequence, shape: [1, sequence.count]), typeIds: IndexTensor(typeIds[s], shape: [1, sequence.count]))
                    }                                                                           // [1, L, E]
                    assertClose(Array(states[(offsets[s] * 12)..<(offsets[s + 1] * 12)]), reference.scalars, rtol: 1e-4, atol: 2e-5,
                                "sequence \(s), \(activation), portable \(portable)")
                }
            }
        }
    }

    /// Packing removes padding: the same sequences padded into one reference
    /// batch (keys masked) give the same states at the real positions.
    func testEqualsThePaddedReferenceBatch() {
        let model = randomModel(activation: .none)
        let lengths = [5, 9, 3]
        let ids = lengths.enumerated().map { s, length in (0 ..< length).map { (7 * $0 + 3 * s) % 50 } }
        let (states, offsets) = BERTInference(model: model)!.hiddenStates(ids: ids)
        var padded = [Int](repeating: 0, count: 3 * 9)
        for (s, sequence) in ids.enumerated() { padded.replaceSubrange(s * 9 ..< s * 9 + sequence.count, with: sequence) }
        let reference = Tensor.withoutGrad { model(IndexTensor(padded, shape: [3, 9]), lengths: lengths) }.scalars   // [3, 9, E]
        for s in 0 ..< 3 {
            assertClose(Array(states[(offsets[s] * 12)..<(offsets[s + 1] * 12)]),
                        Array(reference[(s * 9 * 12)..<((s * 9 + lengths[s]) * 12)]), rtol: 1e-4, atol: 2e-5, "sequence \(s)")
        }
        XCTAssertEqual(BERTInference(model: model)!.hiddenStates(ids: []).states, [])
    }

    /// The embedder's workspaces are reused from call to call (and batch to
    /// batch): a text's embedding does not depend on what ran before it.
    func testWorkspaceReuseLeavesNoTrace() throws {
        let tokenizer = try WordPieceTokenizer(url: modelFixtures().appendingPathComponent("wordpiece_small.json"))
        let embedder = SentenceEmbedder(model: randomModel(activation: .none), tokenizer: tokenizer, maxSequenceLength: 40)
        XCTAssertNotNil(embedder.inference)
        let long = ["the quick brown fox jumps over the lazy dog and runs far away into the forest again", "hello world"]
        let short = ["a b", "hello", "fox"]
        let first = try embedder.embed(long, batchSize: 1)
        let shortFirst = try embedder.embed(short, batchSize: 2)
        XCTAssertEqual(try embedder.embed(long, batchSize: 1), first)
        for (batched, alone) in zip(try embedder.embed(short, batchSize: 3), try short.map { try embedder.embed([$0])[0] }) {
            assertClose(batched, alone, rtol: 0, atol: 1e-6)                  // BLAS may sum a batch's rows in another order
        }
        XCTAssertEqual(try embedder.embed(short, batchSize: 2), shortFirst)
    }

    /// A model the fast path does not cover (here: a temperature) gets no fast
    /// path, and SentenceEmbedder's fast engine falls back to the reference.
    func testUnsupportedAttentionHasNoFastPath() throws {
        var model = randomModel(activation: .none)
        XCTAssertNotNil(BERTInference(model: model))
        model.layers[0].mlp.activation = .tanh
        XCTAssertNil(BERTInference(model: model))
        model.layers[0].mlp.activation = .none
        model.layers[1].attention.attention.temperature = 2
        XCTAssertNil(BERTInference(model: model))
        let tokenizer = try WordPieceTokenizer(url: modelFixtures().appendingPathComponent("wordpiece_small.json"))
        var embedder = SentenceEmbedder(model: model, tokenizer: tokenizer, maxSequenceLength: 10)
        XCTAssertNil(embedder.inference)
        let texts = ["hello world", "the quick brown fox", "a b"]
        let fast = try embedder.embed(texts, batchSize: 2)
        embedder.engine = .reference
        XCTAssertEqual(fast, try embedder.embed(texts, batchSize: 2))   // the same code ran
        let scaled = Tensor.withoutGrad {
            model(IndexTensor(try! tokenizer.encode("a b", maxLength: 10).ids, shape: [1, 4])).mean(axis: 1)
        }.scalars                                                      // [CLS] a b [SEP], temperature 2 in layer 1
        let norm = scaled.reduce(0) { $0 + $1 * $1 }.squareRoot()
        assertClose(fast[2], scaled.map { $0 / norm }, rtol: 1e-5, atol: 1e-6)
    }
}
