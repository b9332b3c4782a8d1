import Foundation
import XCTest
import HeedTestSupport
@testable import HeedModels

/// Heed's normalisation and pre-tokenisation against the reference on every
/// Unicode code point: the fixture holds, for each block of 4096 code points,
/// a checksum of the pieces the reference makes of a string built from the
/// whole block (Tests/Fixtures/models/make_unicode_tables.py says how).
final class UnicodeTablesTests: XCTestCase {
    struct Blocks: Decodable {
        struct Block: Decodable {
            let start: UInt32
            let bert: String
            let byteLevel: String
            let digitsByteLevel: String
        }
        let blockSize: UInt32
        let blocks: [Block]
    }

    /// FNV-1a 64 of the UTF-8 of `pieces` joined by U+0001.
    static func checksum(_ pieces: [String]) -> String {
        var hasher = Hasher64()
        for (index, piece) in pieces.enumerated() {
            if index > 0 { hasher.add(1) }
            for byte in piece.utf8 { hasher.add(byte) }
        }
        return hasher.hex
    }

    struct Hasher64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        @inline(__always) mutating func add(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        var hex: String { String(format: "%016lx", hash) }
    }

    static func scalars(from start: UInt32, count: UInt32) -> [Unicode.Scalar] {
        (start..<(start + count)).compactMap(Unicode.Scalar.init)
    }

    static func bertPieces(_ scalars: [Unicode.Scalar]) -> [String] {
        var text = String.UnicodeScalarView()
        for scalar in scalars { text.append("x"); text.append(scalar) }
        return BertPreTokenizer.words(BertNormalizer().normalize(String(text))).map { String(String.UnicodeScalarView($0)) }
    }

    static func byteLevelText(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var text: [Unicode.Scalar] = []
        text.reserveCapacity(scalars.count * 10)
        for c in scalars { text += [c, " ", c, c, "x", "1", c, "'", "s", c] }
        return text
    }

    /// The UTF-8 of each byte's alphabet character (1 or 2 bytes), as (first, second or 0).
    static let spelledBytes: [(UInt8, UInt8)] = ByteLevel.byteToCharacter.map {
        let utf8 = Array(String($0).utf8)
        return (utf8[0], utf8.count > 1 ? utf8[1] : 0)
    }

    /// The checksum of the byte-level pieces of `text`, spelled in the byte alphabet.
    static func byteLevelChecksum(_ text: [Unicode.Scalar], _ preTokenizer: ByteLevelPreTokenizer) -> String {
        var hasher = Hasher64()
        var first = true
        var bytes: [UInt8] = []
        preTokenizer.forEachPiece(text) { piece in
            if !first { hasher.add(1) }
            first = false
            bytes.removeAll(keepingCapacity: true)
            ByteLevelPreTokenizer.appendUTF8(piece, to: &bytes)
            for byte in bytes {
                let (first, second) = spelledBytes[Int(byte)]
                hasher.add(first)
                if second != 0 { hasher.add(second) }
            }
        }
        return hasher.hex
    }

    func testEveryCodePointNormalisesAndSplitsLikeTheReference() throws {
        let fixture = try loadJSONFixture("unicode_blocks.json", as: Blocks.self)
        XCTAssertEqual(fixture.blocks.count, 0x110000 / Int(fixture.blockSize))
        // Planes 0–3 and 14 hold every assigned character: each of their blocks is checked.
        // Planes 4–13 (unassigned) and 15–16 (private use, ending in two noncharacters) are
        // uniform in every table up to their last block (checked below), so their first and
        // last blocks stand for them.
        let uniformPlanes = Array(4...13) + [15, 16]
        let tables = [UnicodeTables.bertControl, UnicodeTables.bertWhitespace, UnicodeTables.bertPunctuation,
                      UnicodeTables.bertChinese, UnicodeTables.bertNonspacingMark, UnicodeTables.byteLevelLetter,
                      UnicodeTables.byteLevelNumber, UnicodeTables.byteLevelWhitespace, UnicodeTables.numeric]
        for plane in uniformPlanes {
            let range = UInt32(plane << 16)...UInt32(plane << 16 | 0xEFFF)
            for (index, table) in tables.enumerated() { XCTAssertTrue(table.isUniform(over: range), "table \(index), plane \(plane)") }
        }
        let blocks = fixture.blocks.filter { block in
            let plane = Int(block.start >> 16), offset = block.start & 0xFFFF
            return !uniformPlanes.contains(plane) || offset == 0 || offset == 0x10000 - fixture.blockSize
        }
        XCTAssertEqual(blocks.count, 5 * 16 + 12 * 2)
        // Each iteration writes only its own element, and all are read after concurrentPerform returns.
        nonisolated(unsafe) let results = UnsafeMutableBufferPointer<(Bool, Bool, Bool)>.allocate(capacity: blocks.count)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: blocks.count) { index in
            let block = blocks[index]
            let scalars = UnicodeTablesTests.scalars(from: block.start, count: fixture.blockSize)
            let bert = UnicodeTablesTests.checksum(UnicodeTablesTests.bertPieces(scalars)) == block.bert
            let text = UnicodeTablesTests.byteLevelText(scalars)
            let byteLevel = UnicodeTablesTests.byteLevelChecksum(text, ByteLevelPreTokenizer()) == block.byteLevel
            let digits = UnicodeTablesTests.byteLevelChecksum(text, ByteLevelPreTokenizer(digits: .individual)) == block.digitsByteLevel
            results[index] = (bert, byteLevel, digits)
        }
        for (index, block) in blocks.enumerated() {
            let (bert, byteLevel, digits) = results[index]
            let range = "U+\(String(block.start, radix: 16, uppercase: true))…U+\(String(block.start + fixture.blockSize - 1, radix: 16, uppercase: true))"
            XCTAssertTrue(bert, "BertNormalizer + BertPreTokenizer differ from the reference in \(range)")
            XCTAssertTrue(byteLevel, "ByteLevel pre-tokenisation differs from the reference in \(range)")
            XCTAssertTrue(digits, "Digits + ByteLevel pre-tokenisation differs from the reference in \(range)")
        }
    }

    /// The checksum catches a single misclassified code point.
    func testChecksumDetectsOneDifference() throws {
        let fixture = try loadJSONFixture("unicode_blocks.json", as: Blocks.self)
        let block = fixture.blocks[0]
        var pieces = UnicodeTablesTests.bertPieces(UnicodeTablesTests.scalars(from: 0, count: fixture.blockSize))
        XCTAssertEqual(UnicodeTablesTests.checksum(pieces), block.bert)
        pieces[pieces.count / 2] += "!"
        XCTAssertNotEqual(UnicodeTablesTests.checksum(pieces), block.bert)
    }

    func testBertNormalizerExamples() {
        let normalizer = BertNormalizer()
        XCTAssertEqual(normalizer.normalize("Café NAÏVE"), "cafe naive")
        XCTAssertEqual(normalizer.normalize("İstanbul"), "istanbul")
        XCTAssertEqual(normalizer.normalize("ΟΔΥΣΣΕΥΣ"), "οδυσσευσ", "context-free lowercase: no final sigma")
        XCTAssertEqual(normalizer.normalize("北京a"), " 北  京 a")
        XCTAssertEqual(normalizer.normalize("a\u{0}b\u{200B}c\td\u{FFFD}"), "abc d")
        XCTAssertEqual(normalizer.normalize("\u{0890}\u{2E43}"), "\u{0890}\u{2E43}", "not control, not stripped in the reference's tables")
        XCTAssertEqual(BertNormalizer(stripAccents: false).normalize("Café"), "café")
        XCTAssertEqual(BertNormalizer(lowercase: false).normalize("Café"), "Café", "strip_accents follows lowercase")
        XCTAssertEqual(BertNormalizer(cleanText: false, lowercase: false).normalize("a\u{0}\tb"), "a\u{0}\tb")
        XCTAssertEqual(BertPreTokenizer.words("Hey friend!     How are you?!?").map { String(String.UnicodeScalarView($0)) },
                       ["Hey", "friend", "!", "How", "are", "you", "?", "!", "?"])
    }
}
