import Foundation
import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedModels

/// The real SmolLM2-135M-Instruct Q4_1 file (fetched by scripts/fetch-models.sh),
/// against what the `gguf` package read from it (smollm2_expected.json, made by
/// make_gguf_fixtures.py). Touches only the tensors it checks: the file is
/// memory-mapped, so the test stays fast in debug builds.
final class GGUFSmolLM2Tests: XCTestCase {
    struct Expected: Decodable {
        struct Check: Decodable {
            let name: String
            let type: String
            let rows: [Int]?
            let count: Int
            let fnv1a64: String
            let first: [UInt32]
            let last: [UInt32]
            let sum: Double
        }
        let version: Int
        let alignment: Int
        let metadataCount: Int
        let tokenCount: Int
        let mergeCount: Int
        let pre: String
        let tensors: [GGUFExpected.TensorEntry]
        let dequantized: [Check]
    }

    func testDescriptionsMatchTheReferenceReader() throws {
        let url = try requireModel("SmolLM2-135M-Instruct.Q4_1.gguf")
        let expected = try loadJSONFixture("smollm2_expected.json", as: Expected.self)
        let file = try GGUFFile(url: url)
        XCTAssertEqual(Int(file.version), expected.version)
        XCTAssertEqual(file.alignment, expected.alignment)
        XCTAssertEqual(file.metadata.count, expected.metadataCount)
        XCTAssertEqual(try file.strings("tokenizer.ggml.tokens").count, expected.tokenCount)
        XCTAssertEqual(try file.strings("tokenizer.ggml.merges").count, expected.mergeCount)
        XCTAssertEqual(try file.string("tokenizer.ggml.pre"), expected.pre)
        XCTAssertEqual(try file.string("general.architecture"), "llama")
        XCTAssertEqual(try file.integer("llama.block_count"), 30)
        XCTAssertEqual(try file.integer("llama.attention.head_count_kv"), 3)
        XCTAssertEqual(try file.number("llama.rope.freq_base"), 100_000)
        XCTAssertEqual(try file.integer("tokenizer.ggml.bos_token_id"), 1)
        XCTAssertEqual(try file.integer("tokenizer.ggml.eos_token_id"), 2)
        XCTAssertEqual(file.tensorInfos.count, expected.tensors.count)
        for (info, entry) in zip(file.tensorInfos, expected.tensors) {
            XCTAssertEqual(info.name, entry.name)
            XCTAssertEqual(info.type.description, entry.type, entry.name)
            XCTAssertEqual(info.dimensions, entry.dimensions, entry.name)
            XCTAssertEqual(file.dataOffset + Int(info.offset), entry.absoluteOffset, entry.name)
            XCTAssertEqual(info.byteCount, entry.byteCount, entry.name)
        }
        let types = Set(file.tensorInfos.map(\.type))
        XCTAssertEqual(types, [.q4_1, .q8_0, .f32])
    }

    /// Q8_0 embedding rows, whole Q4_1 and F32 tensors: bit-exact with gguf.quants.dequantize.
    func testDequantisedTensorsMatchTheReferenceBitForBit() throws {
        let url = try requireModel("SmolLM2-135M-Instruct.Q4_1.gguf")
        let expected = try loadJSONFixture("smollm2_expected.json", as: Expected.self)
        let file = try GGUFFile(url: url)
        XCTAssertEqual(Set(expected.dequantized.map(\.type)), ["Q8_0", "Q4_1", "F32"])
        for check in expected.dequantized {
            let values: [Float]
            if let rows = check.rows {
                values = try file.rows(check.name, rows[0]..<rows[1]).scalars
            } else {
                values = try file.tensor(check.name).scalars
            }
            let label = "\(check.name) rows \(check.rows ?? [])"
            XCTAssertEqual(values.count, check.count, label)
            assertSameBits(Array(values.prefix(8)), check.first, label)
            assertSameBits(Array(values.suffix(8)), check.last, label)
            XCTAssertEqual(fnv1a64(values), check.fnv1a64, label)
            XCTAssertEqual(values.reduce(0.0) { $0 + Double($1) }, check.sum, accuracy: 1e-7 * max(1, abs(check.sum)), label)
        }
    }
}
