import Foundation
import XCTest
import HeedTestSupport
@testable import HeedModels

/// One malformed file per rule: each must throw exactly the documented error.
final class GGUFErrorTests: XCTestCase {
    /// A small valid file: two metadata entries, one Q8_0 tensor, one F32 tensor.
    func validWriter() -> GGUFTestWriter {
        var writer = GGUFTestWriter()
        writer.add("general.architecture", .string("llama"))
        writer.add("test.flag", .bool(true))
        writer.addTensor("q", dimensions: [32, 2], type: .q8_0, data: [UInt8](repeating: 1, count: 68))
        writer.addTensor("f", dimensions: [3], type: .f32, data: [UInt8](repeating: 0, count: 12))
        return writer
    }

    func assertRejected(_ bytes: [UInt8], _ expected: GGUFError, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let opened = try GGUFFile(data: Data(bytes))
            XCTFail("accepted (tensors \(opened.tensorNames)); expected \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix("gguf: "), file: file, line: line)
        }
    }

    func testValidWriterOutputOpens() throws {
        var writer = validWriter()
        let file = try GGUFFile(data: Data(writer.bytes()))
        XCTAssertEqual(file.tensorNames, ["q", "f"])
        // every byte 1: scale f16 0x0101, every code 1
        XCTAssertEqual(try file.tensor("q").scalars, [Float](repeating: halfToFloat(0x0101), count: 64))
        XCTAssertEqual(try file.tensor("q").shape, [2, 32])
    }

    func testHeaderErrors() {
        var writer = validWriter()
        let valid = writer.bytes()
        assertRejected([], .truncated(field: "magic", offset: 0, needed: 4, available: 0))
        assertRejected(Array("GGU".utf8), .truncated(field: "magic", offset: 0, needed: 4, available: 3))
        assertRejected(Array("GGML".utf8) + valid.dropFirst(4), .badMagic(Array("GGML".utf8)))
        var v1 = valid; v1[4] = 1
        assertRejected(v1, .unsupportedVersion(1))
        var big = valid; big[4] = 0; big[7] = 3
        assertRejected(big, .bigEndianFile(version: 0x0300_0000))
        assertRejected(Array(valid.prefix(10)), .truncated(field: "tensor count", offset: 8, needed: 8, available: 2))
        // counts no file of this size could hold
        var tensors = valid
        for i in 8..<16 { tensors[i] = 0xFF }
        assertRejected(tensors, .countTooLarge(field: "tensor count", count: .max, limit: UInt64((valid.count - 16) / 24)))
        var entries = valid
        for i in 16..<24 { entries[i] = 0x7F }
        assertRejected(entries, .countTooLarge(field: "metadata count", count: 0x7F7F_7F7F_7F7F_7F7F, limit: UInt64((valid.count - 24) / 13)))
    }

    func testMetadataErrors() {
        var writer = GGUFTestWriter()
        writer.add("a", .string("x"))
        writer.add("a", .uint8(1))
        assertRejected(writer.bytes(), .duplicateKey("a"))

        writer = GGUFTestWriter()
        writer.entries = [.raw("k", [13, 0, 0, 0])]
        assertRejected(writer.bytes(), .unknownValueType(field: "metadata \"k\"", code: 13))

        writer.entries = [.raw("k", [7, 0, 0, 0, 2])]
        assertRejected(writer.bytes(), .invalidBool(field: "metadata \"k\"", byte: 2, offset: 4 + 4 + 16 + 8 + 1 + 4))

        writer.entries = [.raw("k", [9, 0, 0, 0, 42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])]
        assertRejected(writer.bytes(), .unknownValueType(field: "metadata \"k\" array", code: 42))

        // an array count beyond the file
        writer.entries = [.raw("k", [9, 0, 0, 0, 4, 0, 0, 0] + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])]
        assertRejected(writer.bytes(), .countTooLarge(field: "metadata \"k\" array length", count: 0x0FFF_FFFF_FFFF_FFFF, limit: 0))

        // a string length beyond the file
        writer.entries = [.raw("k", [8, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 65])]
        assertRejected(writer.bytes(), .truncated(field: "metadata \"k\"", offset: 4 + 4 + 16 + 9 + 4 + 8, needed: 100, available: 1))

        // invalid UTF-8 in a key and in a value
        writer.entries = [.raw("k", [8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0xC3, 0x28])]
        assertRejected(writer.bytes(), .invalidUTF8(field: "metadata \"k\"", offset: 4 + 4 + 16 + 9 + 4 + 8))
        var bytes = writer.bytes()
        bytes[24 + 8] = 0xFF   // the key's only byte
        assertRejected(bytes, .invalidUTF8(field: "metadata entry 0 key", offset: 32))

        // arrays nested past the limit
        var nested = GGUFArray.uint8([1])
        for _ in 0..<GGUFFile.maximumNestingDepth { nested = .array([nested]) }
        writer = GGUFTestWriter()
        writer.add("deep", .array(nested))
        assertRejected(writer.bytes(), .nestingTooDeep(key: "deep", limit: GGUFFile.maximumNestingDepth))
        var allowed = GGUFArray.uint8([1])
        for _ in 0..<(GGUFFile.maximumNestingDepth - 1) { allowed = .array([allowed]) }
        writer = GGUFTestWriter()
        writer.add("deep", .array(allowed))
        XCTAssertEqual(try GGUFFile(data: Data(writer.bytes())).array("deep"), allowed)
    }

    func testAlignmentErrors() throws {
        for (value, found) in [(GGUFValue.uint32(0), "UINT32 0"), (.uint32(48), "UINT32 48"), (.int32(32), "INT32 32"),
                               (.uint64(64), "UINT64 64")] {
            var writer = validWriter()
            writer.add(GGUFFile.alignmentKey, value)
            assertRejected(writer.bytes(), .invalidAlignment(found: found))
        }
        var writer = validWriter()
        writer.alignment = 256
        writer.add(GGUFFile.alignmentKey, .uint32(256))
        let file = try GGUFFile(data: Data(writer.bytes()))
        XCTAssertEqual(file.alignment, 256)
        XCTAssertEqual(file.dataOffset % 256, 0)
        XCTAssertEqual(try file.info("f").offset, 256)
        // the same layout read with the default alignment: 256 is a multiple of 32, but
        // the data section starts elsewhere
        writer.entries.removeLast()
        writer.alignment = 32
        XCTAssertEqual(try GGUFFile(data: Data(writer.bytes())).info("f").offset, 96)
    }

    func testTensorDescriptionErrors() {
        func rejected(_ edit: (inout GGUFTestWriter) -> Void, _ expected: GGUFError, line: UInt = #line) {
            var writer = validWriter()
            edit(&writer)
            assertRejected(writer.bytes(), expected, line: line)
        }
        rejected({ $0.tensors[1].name = "q" }, .duplicateTensor("q"))
        let long = String(repeating: "n", count: 64)
        rejected({ $0.tensors[0].name = long }, .tensorNameTooLong(long, byteCount: 64))
        rejected({ $0.tensors[1].dimensions = [1, 1, 1, 1, 3] }, .tooManyDimensions(tensor: "f", count: 5))
        rejected({ $0.tensors[1].typeCode = 4 }, .unknownTensorType(tensor: "f", code: 4))
        rejected({ $0.tensors[1].typeCode = 99 }, .unknownTensorType(tensor: "f", code: 99))
        rejected({ $0.tensors[0].dimensions = [16, 4] }, .partialBlock(tensor: "q", type: .q8_0, innermost: 16, blockSize: 32))
        rejected({ $0.tensors[1].dimensions = [UInt64(Int64.max) + 1] }, .dimensionsOverflow(tensor: "f", dimensions: [UInt64(Int64.max) + 1]))
        rejected({ $0.tensors[1].dimensions = [1 << 32, 1 << 31] }, .dimensionsOverflow(tensor: "f", dimensions: [1 << 32, 1 << 31]))
        // fits as elements, not as bytes (4 bytes an element)
        rejected({ $0.tensors[1].dimensions = [1 << 31, 1 << 31] }, .dimensionsOverflow(tensor: "f", dimensions: [1 << 31, 1 << 31]))
        rejected({ $0.tensors[1].offset = 100 }, .misalignedOffset(tensor: "f", offset: 100, alignment: 32))
        rejected({ $0.tensors[1].offset = 0 }, .overlappingTensors("q", "f"))
        rejected({ $0.tensors[1].offset = 1 << 40 }, .tensorPastEnd(tensor: "f", offset: 1 << 40, byteCount: 12, dataSize: 128))
        rejected({ $0.tensors[1].offset = UInt64.max - 31 }, .tensorPastEnd(tensor: "f", offset: UInt64.max - 31, byteCount: 12, dataSize: 128))
        rejected({ $0.tensors[1].dimensions = [100] }, .tensorPastEnd(tensor: "f", offset: 96, byteCount: 400, dataSize: 128))
        // zero-sized tensors may sit anywhere inside the data, even on another tensor
        var writer = validWriter()
        writer.addTensor("empty", dimensions: [0, 7], type: .q4_1, data: [], offset: 0)
        XCTAssertEqual(try GGUFFile(data: Data(writer.bytes())).tensor("empty").shape, [7, 0])
    }

    func testTruncationAnywhereIsATypedError() {
        var writer = validWriter()
        let valid = writer.bytes()
        XCTAssertNoThrow(try GGUFFile(data: Data(valid)))
        for length in 0..<valid.count {
            do {
                let file = try GGUFFile(data: Data(valid.prefix(length)))
                // Only the data padding after the last tensor may go.
                XCTAssertGreaterThanOrEqual(length, file.dataOffset + 96 + 12, "accepted at \(length)")
            } catch {
                switch error {
                case .truncated, .countTooLarge, .dataSectionPastEnd, .tensorPastEnd: break
                default: XCTFail("length \(length): \(error)")
                }
            }
        }
    }

    func testFileErrors() {
        XCTAssertThrowsError(try GGUFFile(url: URL(fileURLWithPath: "/nonexistent/model.gguf"))) { error in
            XCTAssertEqual(error as? GGUFError, .io(operation: "open", path: "/nonexistent/model.gguf", errno: ENOENT))
        }
        XCTAssertThrowsError(try GGUFFile(url: URL(fileURLWithPath: "/tmp"))) { error in
            XCTAssertEqual(error as? GGUFError, .io(operation: "open", path: "/tmp", errno: EISDIR))
        }
    }

    func testMessagesNameTheProblem() {
        XCTAssertEqual(GGUFError.misalignedOffset(tensor: "w", offset: 3, alignment: 32).description,
                       "gguf: tensor \"w\" has data offset 3, not a multiple of the alignment 32")
        XCTAssertEqual(GGUFError.truncated(field: "tensor 0 (\"w\") offset", offset: 90, needed: 8, available: 2).description,
                       "gguf: file ends inside tensor 0 (\"w\") offset at byte 90: needs 8 bytes, 2 left (truncated file?)")
        XCTAssertEqual(GGUFError.duplicateKey("a\nb").description, "gguf: metadata key \"a\\u{a}b\" appears twice")
    }
}
