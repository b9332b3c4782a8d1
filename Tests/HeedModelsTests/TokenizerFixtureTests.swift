import Foundation
import XCTest
import HeedTestSupport
@testable import HeedModels

/// What the reference `tokenizers` library produced
/// (Tests/Fixtures/models/make_tokenizer_fixtures.py).
struct TokenizerExpected: Decodable {
    struct Batch: Decodable {
        let indices: [Int]
        let maxLength: Int
        let ids: [[Int]]
        let attentionMask: [[Int]]
        let typeIds: [[Int]]
    }
    struct Small: Decodable {
        let file: String
        let ids: [[Int]]
        let decoded: [String]
        let decodedSkippingSpecial: [String]?
        let vocabularySize: Int
        let batch: Batch?
    }
    struct FileTruncation: Decodable {
        let maxLength: Int
        let input: Int
        let ids: [Int]
    }
    struct MiniLM: Decodable {
        let ids: [[Int]]
        let decoded: [String]
        let decodedWithSpecialTokens: [String]
        let batch: Batch
        let fileTruncation: FileTruncation
        let vocabularySize: Int
    }
    struct SmolLM2: Decodable {
        let ids: [[Int]]
        let decoded: [String]
        let decodedSkippingSpecial: [String]
        let vocabularySize: Int
        let mergeCount: Int
        let transformersGGUFDiffers: [Int]
    }
    let inputs: [String]
    let wordpieceSmall: Small?
    let bpeSmall: Small?
    let bpeDigitsSmall: Small?
    let minilm: MiniLM?
    let smollm2: SmolLM2?
}

/// Asserts ids input by input, naming the input on failure.
func assertIDs(_ actual: [Int], _ expected: [Int], input: String, _ label: String,
               file: StaticString = #filePath, line: UInt = #line) {
    guard actual != expected else { return }
    let firstDifference = zip(actual, expected).enumerated().first { $1.0 != $1.1 }?.offset ?? Swift.min(actual.count, expected.count)
    XCTFail("\(label) \(input.debugDescription): ids differ from position \(firstDifference): got \(Array(actual.dropFirst(firstDifference).prefix(8))), expected \(Array(expected.dropFirst(firstDifference).prefix(8))) (lengths \(actual.count), \(expected.count))",
            file: file, line: line)
}

/// The tokenizers trained by the fixture script: no fetched model needed.
final class TokenizerFixtureTests: XCTestCase {
    func expected() throws -> TokenizerExpected {
        try loadJSONFixture("tokenizer_small_expected.json", as: TokenizerExpected.self)
    }

    func testWordPieceMatchesReference() throws {
        let expected = try expected()
        let reference = try XCTUnwrap(expected.wordpieceSmall)
        let tokenizer = try WordPieceTokenizer(url: modelFixtures().appendingPathComponent(reference.file))
        XCTAssertEqual(tokenizer.vocabularySize, reference.vocabularySize)
        XCTAssertEqual(tokenizer.normalizer, BertNormalizer(cleanText: true, handleChineseCharacters: true, stripAccents: false, lowercase: false))
        for (index, input) in expected.inputs.enumerated() {
            let encoding = try tokenizer.encode(input)
            assertIDs(encoding.ids, reference.ids[index], input: input, "wordpiece_small")
            XCTAssertEqual(encoding.tokens, encoding.ids.map { tokenizer.token(of: $0)! })
            XCTAssertEqual(encoding.attentionMask, Array(repeating: 1, count: encoding.count))
            // without the template: the same ids less [CLS] and [SEP]
            XCTAssertEqual(try tokenizer.encode(input, addSpecialTokens: false).ids, Array(reference.ids[index].dropFirst().dropLast()))
            XCTAssertEqual(try tokenizer.decode(reference.ids[index], skipSpecialTokens: false), reference.decoded[index], input.debugDescription)
            if let skipping = reference.decodedSkippingSpecial {
                XCTAssertEqual(try tokenizer.decode(reference.ids[index]), skipping[index], input.debugDescription)
            }
        }
        let batch = try XCTUnwrap(reference.batch)
        let encodings = try tokenizer.encode(batch: batch.indices.map { expected.inputs[$0] }, maxLength: batch.maxLength)
        XCTAssertEqual(encodings.map(\.ids), batch.ids)
        XCTAssertEqual(encodings.map(\.attentionMask), batch.attentionMask)
        XCTAssertEqual(encodings.map(\.typeIds), batch.typeIds)
    }

    func testByteLevelBPEMatchesReference() throws {
        let expected = try expected()
        for reference in [try XCTUnwrap(expected.bpeSmall), try XCTUnwrap(expected.bpeDigitsSmall)] {
            let tokenizer = try BPETokenizer(url: modelFixtures().appendingPathComponent(reference.file))
            XCTAssertEqual(tokenizer.vocabularySize, reference.vocabularySize)
            XCTAssertEqual(tokenizer.missingBytes, [], "trained with the full byte alphabet")
            let hasTemplate = tokenizer.addsBOS
            for (index, input) in expected.inputs.enumerated() {
                let ids = tokenizer.encode(input)
                assertIDs(ids, reference.ids[index], input: input, reference.file)
                let content = hasTemplate ? Array(reference.ids[index].dropFirst().dropLast()) : reference.ids[index]
                XCTAssertEqual(tokenizer.encode(input, addSpecialTokens: false), content, input.debugDescription)
                XCTAssertEqual(try tokenizer.decode(reference.ids[index]), reference.decoded[index], input.debugDescription)
                if let skipping = reference.decodedSkippingSpecial {
                    XCTAssertEqual(try tokenizer.decode(reference.ids[index], skipSpecialTokens: true), skipping[index], input.debugDescription)
                }
                // every input has all its bytes in the alphabet: the round trip is exact (without
                // add_prefix_space, which puts a space before every piece not starting with one)
                if !tokenizer.preTokenizer.addPrefixSpace {
                    XCTAssertEqual(try tokenizer.decode(tokenizer.encode(input, addSpecialTokens: false)), input, reference.file)
                }
            }
        }
        let small = try BPETokenizer(url: modelFixtures().appendingPathComponent("bpe_small.json"))
        XCTAssertEqual(small.preTokenizer, ByteLevelPreTokenizer(digits: .none, addPrefixSpace: true))
        XCTAssertEqual(small.bosTokenID, small.id(of: "<s>"))
        XCTAssertEqual(small.eosTokenID, small.id(of: "</s>"))
        let digits = try BPETokenizer(url: modelFixtures().appendingPathComponent("bpe_digits_small.json"))
        XCTAssertEqual(digits.preTokenizer, ByteLevelPreTokenizer(digits: .contiguous, addPrefixSpace: false))
    }

    func testByteAlphabetIsGPT2s() {
        XCTAssertEqual(ByteLevel.byteToCharacter[0x20], "Ġ")
        XCTAssertEqual(ByteLevel.byteToCharacter[0x0A], "Ċ")
        XCTAssertEqual(ByteLevel.byteToCharacter[0x41], "A")
        XCTAssertEqual(ByteLevel.byteToCharacter[0xAD], "Ń")
        XCTAssertEqual(ByteLevel.byteToCharacter[0x00], "Ā")
        XCTAssertEqual(Set(ByteLevel.byteToCharacter).count, 256)
        for byte in 0..<256 { XCTAssertEqual(ByteLevel.byte(of: ByteLevel.byteToCharacter[byte]), UInt8(byte)) }
        XCTAssertNil(ByteLevel.byte(of: " "))
        XCTAssertEqual(ByteLevel.bytes(ofToken: "ĠhÃ©"), Array(" hé".utf8))
        XCTAssertEqual(ByteLevel.bytes(ofToken: "<|im_end|>"), Array("<|im_end|>".utf8))
        XCTAssertEqual(ByteLevel.bytes(ofToken: "a€"), Array("a€".utf8), "a character outside the alphabet: the token's own UTF-8")
    }

    func testGPT2RegexPieces() {
        func pieces(_ text: String) -> [String] {
            ByteLevelPreTokenizer().pieces(text).map { String(String.UnicodeScalarView($0)) }
        }
        XCTAssertEqual(pieces("Hello world"), ["Hello", " world"])
        XCTAssertEqual(pieces("don't  stop\n\nnow "), ["don", "'t", " ", " stop", "\n", "\n", "now", " "])
        XCTAssertEqual(pieces("a  \tb"), ["a", "  ", "\t", "b"])
        XCTAssertEqual(pieces("x ''s 'LL 'll 12ab!?"), ["x", " ''", "s", " '", "LL", " '", "ll", " 12", "ab", "!?"])
        XCTAssertEqual(pieces("'ll'sx'"), ["'ll", "'s", "x", "'"])
        XCTAssertEqual(pieces(""), [])
        let digits = ByteLevelPreTokenizer(digits: .individual)
        XCTAssertEqual(digits.pieces("in 2024").map { String(String.UnicodeScalarView($0)) }, ["in", " ", "2", "0", "2", "4"])
    }
}
