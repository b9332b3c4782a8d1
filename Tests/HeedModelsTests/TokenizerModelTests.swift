import Foundation
import XCTest
import HeedTestSupport
@testable import HeedModels

/// The real tokenizers of all-MiniLM-L6-v2 and SmolLM2-135M-Instruct (fetched
/// by scripts/fetch-models.sh) against the reference's ids
/// (tokenizer_models_expected.json, made by make_tokenizer_fixtures.py).
final class TokenizerModelTests: XCTestCase {
    func expected() throws -> TokenizerExpected {
        try loadJSONFixture("tokenizer_models_expected.json", as: TokenizerExpected.self)
    }

    func testMiniLMWordPieceMatchesReference() throws {
        let folder = try requireModel("all-MiniLM-L6-v2")
        let expected = try expected()
        let reference = try XCTUnwrap(expected.minilm)
        let tokenizer = try WordPieceTokenizer(url: folder.appendingPathComponent("tokenizer.json"))
        XCTAssertEqual(tokenizer.vocabularySize, reference.vocabularySize)
        XCTAssertEqual(tokenizer.configuredMaxLength, 128)
        XCTAssertEqual(tokenizer.normalizer, BertNormalizer())
        XCTAssertEqual(try tokenizer.encode("The quick brown fox jumps over the lazy dog.").ids,
                       [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102])
        for (index, input) in expected.inputs.enumerated() {
            let encoding = try tokenizer.encode(input)
            assertIDs(encoding.ids, reference.ids[index], input: input, "MiniLM")
            XCTAssertEqual(try tokenizer.decode(reference.ids[index]), reference.decoded[index], input.debugDescription)
            XCTAssertEqual(try tokenizer.decode(reference.ids[index], skipSpecialTokens: false),
                           reference.decodedWithSpecialTokens[index], input.debugDescription)
        }
        // a padded, truncated batch
        let batch = reference.batch
        let encodings = try tokenizer.encode(batch: batch.indices.map { expected.inputs[$0] }, maxLength: batch.maxLength)
        XCTAssertEqual(encodings.map(\.ids), batch.ids)
        XCTAssertEqual(encodings.map(\.attentionMask), batch.attentionMask)
        XCTAssertEqual(encodings.map(\.typeIds), batch.typeIds)
        // the file's truncation (128) on the > 128-token input
        let truncation = reference.fileTruncation
        XCTAssertGreaterThan(reference.ids[truncation.input].count, 128)
        XCTAssertEqual(try tokenizer.encode(expected.inputs[truncation.input], maxLength: tokenizer.configuredMaxLength).ids, truncation.ids)
        XCTAssertEqual(truncation.ids.count, 128)
        // fixed padding, and a 1-token input
        let fixed = try tokenizer.encode(batch: ["Hello"], padding: .fixed(5))[0]
        XCTAssertEqual(fixed.ids, [101, 7592, 102, 0, 0])
        XCTAssertEqual(fixed.attentionMask, [1, 1, 1, 0, 0])
        XCTAssertEqual(fixed.tokens, ["[CLS]", "hello", "[SEP]", "[PAD]", "[PAD]"])
    }

    /// vocab.txt with BERT's defaults gives the same ids as tokenizer.json.
    func testMiniLMVocabularyFileMatchesTokenizerJSON() throws {
        let folder = try requireModel("all-MiniLM-L6-v2")
        let expected = try expected()
        let reference = try XCTUnwrap(expected.minilm)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: folder.appendingPathComponent("vocab.txt"))
        XCTAssertEqual(tokenizer.vocabularySize, reference.vocabularySize)
        for (index, input) in expected.inputs.enumerated() {
            assertIDs(try tokenizer.encode(input).ids, reference.ids[index], input: input, "MiniLM vocab.txt")
        }
    }

    func testSmolLM2ByteLevelBPEMatchesReference() throws {
        let url = try requireModel("SmolLM2-135M-Instruct.Q4_1.gguf")
        let expected = try expected()
        let reference = try XCTUnwrap(expected.smollm2)
        let tokenizer = try BPETokenizer(gguf: GGUFFile(url: url))
        XCTAssertEqual(tokenizer.vocabularySize, reference.vocabularySize)
        XCTAssertEqual(tokenizer.vocabularySize, 49_152)
        XCTAssertEqual(tokenizer.mergeCount, reference.mergeCount)
        XCTAssertEqual(tokenizer.mergeCount, 48_900)
        XCTAssertEqual(tokenizer.preTokenizer, ByteLevelPreTokenizer(digits: .individual))
        XCTAssertEqual(tokenizer.bosTokenID, 1)
        XCTAssertEqual(tokenizer.eosTokenID, 2)
        XCTAssertFalse(tokenizer.addsBOS)
        XCTAssertEqual(tokenizer.addedTokens.count, 17)
        XCTAssertEqual(tokenizer.token(of: 2), "<|im_end|>")
        XCTAssertEqual(tokenizer.missingBytes, [0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2] + Array(0xF5...0xFF))
        XCTAssertEqual(tokenizer.encode("Once upon a time, there was a little"), [6403, 1980, 253, 655, 28, 665, 436, 253, 1838])
        XCTAssertEqual(try tokenizer.decode([8180, 3365, 20391, 617, 5732, 288, 1238, 281, 260, 2388]),
                       " girl named Emma who loved to play in the sun")
        for (index, input) in expected.inputs.enumerated() {
            assertIDs(tokenizer.encode(input), reference.ids[index], input: input, "SmolLM2")
            XCTAssertEqual(try tokenizer.decode(reference.ids[index]), reference.decoded[index], input.debugDescription)
            XCTAssertEqual(try tokenizer.decode(reference.ids[index], skipSpecialTokens: true),
                           reference.decodedSkippingSpecial[index], input.debugDescription)
        }
        // The one input where transformers' own GGUF loader (ByteLevel without Digits) disagrees
        // with the declared "smollm" pipeline: a space before a numeric character like "½".
        XCTAssertEqual(reference.transformersGGUFDiffers, [expected.inputs.firstIndex { $0.hasPrefix("Numbers:") }!])
    }
}
