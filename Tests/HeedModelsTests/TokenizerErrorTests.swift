import Foundation
import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedModels

/// Malformed tokenizer files and requests: each throws the documented error,
/// naming the field; and thousands of corrupted files load or throw, never crash.
final class TokenizerErrorTests: XCTestCase {
    let wordPiece = #"""
    {"normalizer": {"type": "BertNormalizer", "lowercase": true},
     "pre_tokenizer": {"type": "BertPreTokenizer"},
     "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 2], "sep": ["[SEP]", 3]},
     "added_tokens": [{"id": 0, "content": "[PAD]", "special": true, "normalized": false}],
     "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4, "##b": 5}}}
    """#

    let bpe = #"""
    {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false},
     "decoder": {"type": "ByteLevel"},
     "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3}, "merges": ["a b"]}}
    """#

    func assertWordPiece(_ json: String, throws expected: TokenizerError, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try WordPieceTokenizer(data: Data(json.utf8))
            XCTFail("accepted; expected \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, file: file, line: line)
        }
    }

    func assertBPE(_ json: String, throws expected: TokenizerError, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try BPETokenizer(data: Data(json.utf8))
            XCTFail("accepted; expected \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, file: file, line: line)
        }
    }

    func testValidMinimalFilesLoad() throws {
        let tokenizer = try WordPieceTokenizer(data: Data(wordPiece.utf8))
        XCTAssertEqual(try tokenizer.encode("A ab [PAD] c").ids, [2, 4, 4, 5, 0, 1, 3])
        let bpeTokenizer = try BPETokenizer(data: Data(bpe.utf8))
        XCTAssertEqual(bpeTokenizer.encode("ab a"), [2, 3, 0])
        XCTAssertEqual(bpeTokenizer.encode("abc"), [2], "'c' has no symbol and no unknown token: dropped, as in the reference")
    }

    func testJSONErrors() {
        assertWordPiece("", throws: .invalidJSON(reason: "unexpected end of input", byteOffset: 0))
        assertWordPiece("{\"model\": }", throws: .invalidJSON(reason: "unexpected character 0x7D", byteOffset: 10))
        assertWordPiece("{} x", throws: .invalidJSON(reason: "trailing characters after the document", byteOffset: 3))
        assertWordPiece(#"{"a": "\ud800"}"#, throws: .invalidJSON(reason: "lone high surrogate", byteOffset: 13))
        assertWordPiece("{\"a\": \"x\u{1}\"}", throws: .invalidJSON(reason: "raw control character in a string", byteOffset: 8))
        assertWordPiece(#"{"a": 012}"#, throws: .invalidJSON(reason: "leading zero", byteOffset: 9))
        assertWordPiece(String(repeating: "[", count: 200), throws: .invalidJSON(reason: "nesting deeper than 128 levels", byteOffset: 128))
        var invalidUTF8 = Array(#"{"a": "x"}"#.utf8)
        invalidUTF8[7] = 0xFF
        XCTAssertThrowsError(try WordPieceTokenizer(data: Data(invalidUTF8))) { error in
            XCTAssertEqual(error as? TokenizerError, .invalidJSON(reason: "string is not valid UTF-8", byteOffset: 9))
        }
    }

    func testConfigurationErrorsNameTheField() throws {
        assertWordPiece("{}", throws: .invalidConfiguration(path: "model", reason: "missing"))
        assertWordPiece(#"{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": []}}"#,
                        throws: .invalidConfiguration(path: "model.vocab", reason: "expected an object, found an array"))
        assertWordPiece(#"{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": "0"}}}"#,
                        throws: .invalidConfiguration(path: "model.vocab[\"[UNK]\"]", reason: "expected an integer, found the string \"0\""))
        assertWordPiece(#"{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}}}"#,
                        throws: .missingToken(role: "unknown token", token: "[UNK]"))
        assertWordPiece(#"{"model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 0, "b": 0}}}"#,
                        throws: .duplicateID(0, first: "a", second: "b"))
        assertWordPiece(#"{"model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 0, "a": 1}}}"#,
                        throws: .duplicateToken("a", firstID: 0, secondID: 1))
        // canonically equivalent spellings are distinct tokens (Swift's String == would merge them)
        let canonical = try WordPieceTokenizer(data: Data(#"{"model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 0, "\u00e9": 1, "e\u0301": 2}}}"#.utf8))
        XCTAssertEqual(canonical.id(of: "\u{E9}"), 1)
        XCTAssertEqual(canonical.id(of: "e\u{301}"), 2)
        assertWordPiece(#"{"model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 99999999}}}"#,
                        throws: .idTooLarge(99_999_999, limit: maximumVocabularyID))
        assertWordPiece(#"{"model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": -1}}}"#,
                        throws: .invalidConfiguration(path: "vocab[\"a\"]", reason: "negative id -1"))
        assertWordPiece(#"{"normalizer": {"type": "NFKC"}, "model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 0}}}"#,
                        throws: .unsupported(path: "normalizer", what: "normalizer \"NFKC\""))
        assertWordPiece(#"{"model": {"type": "Unigram", "vocab": []}}"#,
                        throws: .unsupported(path: "model.type", what: "model \"Unigram\" in a WordPiece tokenizer"))
        assertWordPiece(#"{"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}], "special_tokens": {}}, "model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 0}}}"#,
                        throws: .invalidConfiguration(path: "post_processor.single[0].SpecialToken", reason: "special token \"[CLS]\" is not in special_tokens"))
        assertWordPiece(#"{"post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 7], "sep": ["[SEP]", 8]}, "model": {"type": "WordPiece", "unk_token": "a", "vocab": {"a": 0}}}"#,
                        throws: .missingToken(role: "template token (id 7)", token: "[CLS]"))
    }

    func testBPEConfigurationErrors() {
        func bpeWith(_ model: String) -> String {
            #"{"pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"}, "model": "# + model + "}"
        }
        assertBPE(bpeWith(#"{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}"#),
                  throws: .invalidMerge(index: 0, merge: "a b", reason: "\"ab\" is not in the vocabulary"))
        assertBPE(bpeWith(#"{"type": "BPE", "vocab": {"a": 0, "ab": 1}, "merges": ["a  b"]}"#),
                  throws: .invalidMerge(index: 0, merge: "a  b", reason: "expected two tokens separated by one space"))
        assertBPE(bpeWith(#"{"type": "BPE", "vocab": {"a": 0, "ab": 1}, "merges": [["a", "c"]]}"#),
                  throws: .invalidMerge(index: 0, merge: "a c", reason: "\"c\" is not in the vocabulary"))
        assertBPE(bpeWith(#"{"type": "BPE", "dropout": 0.1, "vocab": {}, "merges": []}"#),
                  throws: .unsupported(path: "model.dropout", what: "BPE dropout"))
        assertBPE(bpeWith(#"{"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}"#),
                  throws: .unsupported(path: "model.byte_fallback", what: "byte_fallback (SentencePiece-style BPE)"))
        assertBPE(bpeWith(#"{"type": "BPE", "unk_token": "<unk>", "vocab": {}, "merges": []}"#),
                  throws: .missingToken(role: "unknown token", token: "<unk>"))
        assertBPE(#"{"pre_tokenizer": {"type": "Metaspace"}, "decoder": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}"#,
                  throws: .unsupported(path: "pre_tokenizer", what: "pre-tokenizer \"Metaspace\""))
        assertBPE(#"{"pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}"#,
                  throws: .unsupported(path: "decoder", what: "decoder \"Metaspace\""))
        assertBPE(#"{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}"#,
                  throws: .invalidConfiguration(path: "decoder", reason: "missing"))
    }

    func testRequestErrors() throws {
        let tokenizer = try WordPieceTokenizer(data: Data(wordPiece.utf8))
        XCTAssertThrowsError(try tokenizer.encode("a", maxLength: 1)) { error in
            XCTAssertEqual(error as? TokenizerError, .maxLengthTooShort(1, specialTokens: 2))
        }
        XCTAssertEqual(try tokenizer.encode("a b a", maxLength: 2).ids, [2, 3])
        XCTAssertEqual(try tokenizer.encode("a b a", addSpecialTokens: false, maxLength: 1).ids, [4])
        XCTAssertThrowsError(try tokenizer.decode([4, 6])) { error in
            XCTAssertEqual(error as? TokenizerError, .unknownID(6, vocabularySize: 6))
            XCTAssertEqual("\(error)", "tokenizer: token id 6 is not in the vocabulary of 6 tokens")
        }
        let bpeTokenizer = try BPETokenizer(data: Data(bpe.utf8))
        XCTAssertThrowsError(try bpeTokenizer.decode([-1])) { error in
            XCTAssertEqual(error as? TokenizerError, .unknownID(-1, vocabularySize: 4))
        }
        XCTAssertThrowsError(try WordPieceTokenizer(url: URL(fileURLWithPath: "/nonexistent/tokenizer.json"))) { error in
            guard case .unreadableFile(let path, _) = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "/nonexistent/tokenizer.json")
        }
    }

    func testVocabularyFileErrors() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("heed-vocab-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("vocab.txt")
        try Data("[PAD]\n[UNK]\n[SEP]\n[MASK]\nhello\n".utf8).write(to: url)
        XCTAssertThrowsError(try WordPieceTokenizer(vocabularyFile: url)) { error in
            XCTAssertEqual(error as? TokenizerError, .missingToken(role: "BERT special token", token: "[CLS]"))
        }
        try Data("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nhello\r\n##s\r\n".utf8).write(to: url)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: url)
        XCTAssertEqual(try tokenizer.encode("Hellos [MASK]").ids, [2, 5, 6, 4, 3])
        try Data("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nhello\n".utf8).write(to: url)
        XCTAssertThrowsError(try WordPieceTokenizer(vocabularyFile: url)) { error in
            XCTAssertEqual(error as? TokenizerError, .duplicateToken("hello", firstID: 5, secondID: 6))
        }
    }

    func testGGUFTokenizerErrors() throws {
        func gguf(_ edit: (inout [String: GGUFValue]) -> Void) throws -> GGUFFile {
            var metadata: [String: GGUFValue] = [
                "tokenizer.ggml.model": .string("gpt2"), "tokenizer.ggml.pre": .string("smollm"),
                "tokenizer.ggml.tokens": .array(.string(["<|endoftext|>", "a", "b", "ab"])),
                "tokenizer.ggml.token_type": .array(.int32([3, 1, 1, 1])),
                "tokenizer.ggml.merges": .array(.string(["a b"])),
                "tokenizer.ggml.bos_token_id": .uint32(0), "tokenizer.ggml.eos_token_id": .uint32(0),
            ]
            edit(&metadata)
            var writer = GGUFTestWriter()
            for key in metadata.keys.sorted() { writer.add(key, metadata[key]!) }
            return try GGUFFile(data: Data(writer.bytes()))
        }
        func assertRejected(_ edit: (inout [String: GGUFValue]) -> Void, _ expected: TokenizerError, line: UInt = #line) throws {
            XCTAssertThrowsError(try BPETokenizer(gguf: gguf(edit)), line: line) { error in
                XCTAssertEqual(error as? TokenizerError, expected, line: line)
            }
        }
        let valid = try BPETokenizer(gguf: gguf { _ in })
        XCTAssertEqual(valid.encode("ab<|endoftext|>a"), [3, 0, 1])
        XCTAssertEqual(valid.missingBytes.count, 254)
        try assertRejected({ $0["tokenizer.ggml.model"] = .string("llama") },
                           .unsupported(path: "tokenizer.ggml.model", what: "tokenizer model \"llama\" (only \"gpt2\", byte-level BPE)"))
        try assertRejected({ $0["tokenizer.ggml.pre"] = .string("qwen2") },
                           .unsupported(path: "tokenizer.ggml.pre", what: "pre-tokenizer \"qwen2\""))
        try assertRejected({ $0["tokenizer.ggml.tokens"] = nil }, .gguf(.keyNotFound("tokenizer.ggml.tokens")))
        try assertRejected({ $0["tokenizer.ggml.merges"] = .array(.int32([1])) },
                           .gguf(.typeMismatch(key: "tokenizer.ggml.merges", expected: "ARRAY[STRING]", found: "ARRAY[INT32] (1)")))
        try assertRejected({ $0["tokenizer.ggml.token_type"] = .array(.int32([1])) },
                           .invalidConfiguration(path: "tokenizer.ggml.token_type", reason: "1 types for 4 tokens"))
        try assertRejected({ $0["tokenizer.ggml.bos_token_id"] = .uint32(9) },
                           .invalidConfiguration(path: "tokenizer.ggml.bos_token_id", reason: "id 9 is not a token"))
        try assertRejected({ $0["tokenizer.ggml.merges"] = .array(.string(["b a"])) },
                           .invalidMerge(index: 0, merge: "b a", reason: "\"ba\" is not in the vocabulary"))
        try assertRejected({ $0["tokenizer.ggml.tokens"] = .array(.string(["a", "a", "b", "ab"])) },
                           .duplicateToken("a", firstID: 0, secondID: 1))
        try assertRejected({ $0["tokenizer.ggml.add_bos_token"] = .bool(true); $0["tokenizer.ggml.bos_token_id"] = nil },
                           .invalidConfiguration(path: "bos token", reason: "asked to add the bos token, but none is declared"))
    }

    // MARK: Fuzz

    /// Corrupted tokenizer.json files load (and then tokenise and decode
    /// without trouble) or throw a TokenizerError; never crash.
    func testCorruptedTokenizerFilesLoadOrThrowTypedErrors() throws {
        var generator = RandomGenerator(seed: 0x70CE)
        var loaded = 0
        var rejections: [String: Int] = [:]
        let samples = ["hello world", "Ab 12 ''s ⟨x⟩ <|user|>", "東京 🙂 e\u{301}\n\t", ""]
        for name in ["wordpiece_small.json", "bpe_small.json", "bpe_digits_small.json"] {
            let original = [UInt8](try Data(contentsOf: modelFixtures().appendingPathComponent(name)))
            for _ in 0..<700 {
                var bytes = original
                for _ in 0...generator.nextInt(below: 2) {
                    let at = generator.nextInt(below: bytes.count)
                    switch generator.nextInt(below: 6) {
                    case 0: bytes[at] ^= UInt8(1) << generator.nextInt(below: 8)
                    case 1:
                        let significant = Array("{}[],:\"\\0123456789-.eEtfn ".utf8)
                        bytes[at] = significant[generator.nextInt(below: significant.count)]
                    case 2: bytes.removeSubrange(at..<Swift.min(bytes.count, at + 1 + generator.nextInt(below: 30)))
                    case 3: bytes = Array(bytes.prefix(at))
                    case 4: // replace a number by another
                        if let start = bytes[at...].firstIndex(where: { (0x30...0x39).contains($0) }) {
                            var end = start
                            while end < bytes.count, (0x30...0x39).contains(bytes[end]) { end += 1 }
                            let replacement = ["0", "1", "-1", "2", "99999999999", "400", "1.5", "1e3"][generator.nextInt(below: 8)]
                            bytes.replaceSubrange(start..<end, with: Array(replacement.utf8))
                        }
                    default: // swap a "type" value
                        if let range = firstRange(of: Array("\"type\":\"".utf8), in: bytes, from: at) ?? firstRange(of: Array("\"type\":\"".utf8), in: bytes, from: 0) {
                            let names = ["BPE", "WordPiece", "ByteLevel", "Sequence", "Digits", "BertNormalizer", "NFC", "TemplateProcessing", "X"]
                            var end = range.upperBound
                            while end < bytes.count, bytes[end] != 0x22 { end += 1 }
                            bytes.replaceSubrange(range.upperBound..<end, with: Array(names[generator.nextInt(below: names.count)].utf8))
                        }
                    }
                    if bytes.isEmpty { break }
                }
                // Loading may fail, with a TokenizerError; what loads must then work.
                do {
                    if name.hasPrefix("wordpiece") {
                        let tokenizer = try WordPieceTokenizer(data: Data(bytes))
                        XCTAssertNoThrow(try {
                            for sample in samples { _ = try tokenizer.decode(tokenizer.encode(sample, maxLength: 8).ids) }
                            _ = try tokenizer.encode(batch: samples, maxLength: 8)
                        }())
                    } else {
                        let tokenizer = try BPETokenizer(data: Data(bytes))
                        XCTAssertNoThrow(try { for sample in samples { _ = try tokenizer.decode(tokenizer.encode(sample)) } }())
                    }
                    loaded += 1
                } catch {
                    XCTAssertTrue(error.description.hasPrefix("tokenizer: "))
                    rejections[Mirror(reflecting: error).children.first?.label ?? "\(error)", default: 0] += 1
                }
            }
        }
        XCTAssertGreaterThan(loaded, 100, "\(rejections)")
        XCTAssertGreaterThanOrEqual(rejections.count, 6, "\(rejections)")
        print("tokenizer fuzz: \(loaded) loaded, rejected: \(rejections.sorted { $0.key < $1.key })")
    }
}

private func firstRange(of pattern: [UInt8], in bytes: [UInt8], from start: Int) -> Range<Int>? {
    guard pattern.count <= bytes.count, start <= bytes.count - pattern.count else { return nil }
    for i in start...(bytes.count - pattern.count) where bytes[i..<(i + pattern.count)].elementsEqual(pattern) {
        return i..<(i + pattern.count)
    }
    return nil
}
