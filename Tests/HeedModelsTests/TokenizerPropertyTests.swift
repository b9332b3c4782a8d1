import Foundation
import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedModels

/// Seeded random strings that stress tokenizers: every script, emoji
/// sequences, combining marks, controls, whitespace runs, any scalar of any
/// plane, noncharacters, and the special tokens' own spellings.
struct RandomText {
    var generator: RandomGenerator

    init(seed: UInt64) { generator = RandomGenerator(seed: seed) }

    mutating func pick<T>(_ choices: [T]) -> T { choices[generator.nextInt(below: choices.count)] }

    mutating func scalar(in range: ClosedRange<UInt32>) -> Unicode.Scalar {
        while true {
            let value = range.lowerBound + UInt32(generator.nextInt(below: Int(range.upperBound - range.lowerBound) + 1))
            if let scalar = Unicode.Scalar(value) { return scalar }   // skips surrogates
        }
    }

    mutating func segment() -> String {
        switch generator.nextInt(below: 14) {
        case 0: return pick(["the", "Quick", "don't", "we'll", "O'Neil", "naïve", "ÉTÉ", "straße", "İ", "ΣΑΣ", "hello", "x"])
        case 1: return pick([" ", "  ", "\t", "\n", "\r\n", "\n\n\n", "\u{A0}", "\u{3000}", "\u{2028}", "\u{85}", " \t "])
        case 2: return pick(["🙂", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "✨", "🤖", "❤️", "🏳️‍🌈", "1️⃣"])
        case 3: return String(String.UnicodeScalarView((0..<(1 + generator.nextInt(below: 6))).map { _ in scalar(in: 0x4E00...0x9FFF) }))
        case 4: return String(scalar(in: 0x300...0x36F))                                           // a lone combining mark
        case 5: return "e" + String(scalar(in: 0x300...0x36F)) + String(scalar(in: 0x300...0x36F))
        case 6: return String(scalar(in: 0...0x1F)) + String(scalar(in: 0x7F...0x9F))              // controls, NUL included
        case 7: return String(scalar(in: 0...0x10FFFF))                                            // anything, any plane
        case 8: return String(scalar(in: 0x80...0x7FF)) + String(scalar(in: 0x800...0xFFFF))
        case 9: return String((0..<(1 + generator.nextInt(below: 20))).map { _ in pick(Array("0123456789")) })
        case 10: return pick([".", ",", "!?", "...", "'", "''", "'s", "'LL", "\"", "(", "]", "—", "«", "¿", "$", "%", "^", "`", "~"])
        case 11: return pick(["\u{FFFD}", "\u{FEFF}", "\u{FFFE}", "\u{FFFF}", "\u{10FFFF}", "\u{E000}", "\u{200B}", "\u{200D}", "\u{AD}"])
        case 12: return pick(["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "[CLS]", "<|user|>", " ⟨x⟩"])
        default: return String(String.UnicodeScalarView((0..<(1 + generator.nextInt(below: 8))).map { _ in
            scalar(in: pick([0x20...0x7E, 0xA0...0x24F, 0x370...0x3FF, 0x400...0x4FF, 0x590...0x6FF, 0x900...0x97F,
                             0xE00...0xE7F, 0xAC00...0xD7A3, 0x1100...0x11FF, 0x1F300...0x1FAFF, 0x20000...0x2A6DF]))
        }))
        }
    }

    mutating func text(maxSegments: Int = 12) -> String {
        (0..<generator.nextInt(below: maxSegments + 1)).map { _ in segment() }.joined()
    }
}

final class TokenizerPropertyTests: XCTestCase {
    /// decode(encode(s)) == s for a vocabulary with the full byte alphabet.
    func testByteLevelRoundTripIsExact() throws {
        let tokenizer = try BPETokenizer(url: modelFixtures().appendingPathComponent("bpe_digits_small.json"))
        XCTAssertEqual(tokenizer.missingBytes, [])
        var random = RandomText(seed: 0xB0B)
        for _ in 0..<2_000 {
            let text = random.text()
            let ids = tokenizer.encode(text)
            XCTAssertEqual(try tokenizer.decode(ids), text, text.debugDescription)
            XCTAssertEqual(try tokenizer.decodeBytes(ids), Array(text.utf8))
        }
    }

    /// SmolLM2: exact round trip for text whose bytes the vocabulary has; otherwise
    /// exactly the missing bytes are lost (as in the reference), nothing else.
    func testSmolLM2RoundTrip() throws {
        let url = try requireModel("SmolLM2-135M-Instruct.Q4_1.gguf")
        let tokenizer = try BPETokenizer(gguf: GGUFFile(url: url))
        let missing = Set(tokenizer.missingBytes)
        var random = RandomText(seed: 0x5301)
        var lossy = 0
        for _ in 0..<600 {
            let text = random.text(maxSegments: 8)
            let ids = tokenizer.encode(text)
            let bytes = Array(text.utf8)
            XCTAssertEqual(try tokenizer.decodeBytes(ids), bytes.filter { !missing.contains($0) }, text.debugDescription)
            if bytes.contains(where: missing.contains) {
                lossy += 1
            } else {
                XCTAssertEqual(try tokenizer.decode(ids), text, text.debugDescription)
            }
        }
        XCTAssertGreaterThan(lossy, 10, "the corpus must include characters SmolLM2 cannot spell")
        XCTAssertLessThan(lossy, 300)
    }

    /// WordPiece on random text: every id is in the vocabulary, the template
    /// wraps the content, truncation and padding keep their promises.
    func testWordPieceInvariants() throws {
        let tokenizer = try WordPieceTokenizer(url: modelFixtures().appendingPathComponent("wordpiece_small.json"))
        var random = RandomText(seed: 0x3EE)
        for _ in 0..<300 {
            let texts = (0..<3).map { _ in random.text() }
            let full = try texts.map { text throws(TokenizerError) in try tokenizer.encode(text) }
            let batch = try tokenizer.encode(batch: texts, maxLength: 10)
            for (encoding, whole) in zip(batch, full) {
                XCTAssertEqual(encoding.count, batch.map(\.count).max())
                let real = encoding.attentionMask.reduce(0, +)
                XCTAssertEqual(real, Swift.min(whole.count, 10))
                XCTAssertEqual(Array(encoding.ids.prefix(real - 1)), Array(whole.ids.prefix(real - 1)))
                XCTAssertEqual(encoding.ids[real - 1], tokenizer.id(of: "[SEP]"))
                XCTAssertTrue(encoding.ids.allSatisfy { tokenizer.token(of: $0) != nil })
            }
        }
    }
}
