import Foundation
import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedModels

/// What `gguf.GGUFReader` and `gguf.quants.dequantize` read from the
/// committed files (Tests/Fixtures/models/make_gguf_fixtures.py).
struct GGUFExpected: Decodable {
    struct Value: Decodable {
        let type: String
        let value: JSONValue
    }
    struct TensorEntry: Decodable {
        let name: String
        let type: String
        let dimensions: [Int]
        let absoluteOffset: Int
        let byteCount: Int
        let f32Bits: [UInt32]?
    }
    struct File: Decodable {
        let version: Int
        let alignment: Int
        let metadataKeys: [String]
        let metadata: [String: Value]
        let tensors: [TensorEntry]
        let fileSize: Int
        let firstDataOffset: Int
    }
    let quantSizes: [String: [Int]]
    let typeCodes: [String: UInt32]
    let files: [String: File]
}

/// A JSON value of any shape (the fixture's metadata values).
indirect enum JSONValue: Decodable, Equatable {
    case integer(Int64), unsigned(UInt64), bool(Bool), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let v = try? container.decode(Int64.self) { self = .integer(v) }
        else if let v = try? container.decode(UInt64.self) { self = .unsigned(v) }
        else if let v = try? container.decode(Bool.self) { self = .bool(v) }
        else if let v = try? container.decode(String.self) { self = .string(v) }
        else if let v = try? container.decode([JSONValue].self) { self = .array(v) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    /// As a 64-bit pattern (integers, and floats given as bit patterns).
    var bits: UInt64? {
        switch self {
        case .integer(let v): return UInt64(bitPattern: v)
        case .unsigned(let v): return v
        default: return nil
        }
    }
}

final class GGUFFileTests: XCTestCase {
    func testTypeTableMatchesGGMLQuantSizes() throws {
        let expected = try loadJSONFixture("gguf_expected.json", as: GGUFExpected.self)
        XCTAssertEqual(expected.typeCodes.count, GGMLType.allCases.count)
        for type in GGMLType.allCases {
            XCTAssertEqual(expected.typeCodes[type.description], type.rawValue, "\(type)")
            XCTAssertEqual(expected.quantSizes[type.description], [type.blockSize, type.blockByteCount], "\(type)")
        }
    }

    func testReadsReferenceFilesLikeTheReferenceReader() throws {
        let expected = try loadJSONFixture("gguf_expected.json", as: GGUFExpected.self)
        for name in ["reference.gguf", "aligned64.gguf"] {
            let reference = try XCTUnwrap(expected.files[name])
            let file = try GGUFFile(url: modelFixtures().appendingPathComponent(name))
            XCTAssertEqual(Int(file.version), reference.version)
            XCTAssertEqual(file.alignment, reference.alignment)
            XCTAssertEqual(file.dataOffset, reference.firstDataOffset, name)
            XCTAssertEqual(file.dataOffset + file.dataSize, reference.fileSize)
            XCTAssertEqual(file.metadataKeys, reference.metadataKeys)
            for key in reference.metadataKeys {
                let want = try XCTUnwrap(reference.metadata[key])
                let got = try file.value(key)
                assertValue(got, equals: want, key)
            }
            XCTAssertEqual(file.tensorNames, reference.tensors.map(\.name))
            for entry in reference.tensors {
                let info = try file.info(entry.name)
                XCTAssertEqual(info.type.description, entry.type, entry.name)
                XCTAssertEqual(info.dimensions, entry.dimensions, entry.name)
                XCTAssertEqual(info.shape, entry.dimensions.reversed(), entry.name)
                XCTAssertEqual(file.dataOffset + Int(info.offset), entry.absoluteOffset, entry.name)
                XCTAssertEqual(info.byteCount, entry.byteCount, entry.name)
                if let bits = entry.f32Bits {
                    let tensor = try file.tensor(entry.name)
                    XCTAssertEqual(tensor.shape, info.shape)
                    assertSameBits(tensor.scalars, bits, "\(name) \(entry.name)")
                } else {
                    XCTAssertThrowsError(try file.tensor(entry.name)) { error in
                        XCTAssertEqual(error as? GGUFError, .cannotDequantize(tensor: entry.name, type: info.type))
                    }
                    XCTAssertEqual(try file.rawBytes(entry.name).count, entry.byteCount)
                }
            }
        }
    }

    /// Every quantised block of the fixtures, also through `rows(_:_:)`, row by row.
    func testRowsMatchWholeTensor() throws {
        let file = try GGUFFile(url: modelFixtures().appendingPathComponent("reference.gguf"))
        for name in ["t.q8_0", "t.q4_0", "t.q4_1", "t.f16", "t.bf16", "t.f32"] {
            let info = try file.info(name)
            let whole = try file.tensor(name).scalars
            for row in 0..<info.rowCount {
                let slice = try file.rows(name, row..<(row + 1))
                XCTAssertEqual(slice.shape, [1, info.rowLength])
                XCTAssertEqual(slice.scalars.map(\.bitPattern),
                               whole[(row * info.rowLength)..<((row + 1) * info.rowLength)].map(\.bitPattern), "\(name) row \(row)")
            }
            XCTAssertEqual(try file.rows(name, 0..<0).shape, [0, info.rowLength])
            XCTAssertThrowsError(try file.rows(name, 0..<(info.rowCount + 1))) { error in
                XCTAssertEqual(error as? GGUFError, .rowsOutOfRange(tensor: name, rows: 0..<(info.rowCount + 1), rowCount: info.rowCount))
            }
        }
    }

    func testTypedMetadataAccessors() throws {
        let file = try GGUFFile(url: modelFixtures().appendingPathComponent("reference.gguf"))
        XCTAssertEqual(try file.string("general.architecture"), "heedtest")
        XCTAssertEqual(try file.integer("test.u8"), 200)
        XCTAssertEqual(try file.integer("test.i64"), Int.min)
        XCTAssertEqual(try file.number("test.f32"), Double(Float(0.1)))
        XCTAssertEqual(try file.bool("test.true"), true)
        XCTAssertEqual(try file.strings("test.array.string"), ["a", "", "ü", "Ġthe"])
        XCTAssertEqual(try file.integers("test.array.i8"), [-128, 0, 127])
        XCTAssertThrowsError(try file.integer("test.u64")) { error in   // 2⁶⁴ − 1 does not fit Int
            XCTAssertEqual(error as? GGUFError, .typeMismatch(key: "test.u64", expected: "an integer", found: "UINT64 18446744073709551615"))
        }
        XCTAssertThrowsError(try file.string("test.u8")) { error in
            XCTAssertEqual(error as? GGUFError, .typeMismatch(key: "test.u8", expected: "STRING", found: "UINT8 200"))
        }
        XCTAssertThrowsError(try file.strings("nope")) { error in
            XCTAssertEqual(error as? GGUFError, .keyNotFound("nope"))
            XCTAssertEqual("\(error)", "gguf: no metadata entry \"nope\"")
        }
        XCTAssertThrowsError(try file.tensor("nope")) { error in
            XCTAssertEqual(error as? GGUFError, .tensorNotFound("nope"))
        }
        guard case .array(let nested) = try file.array("test.array.nested") else { return XCTFail("not nested") }
        XCTAssertEqual(nested, [.int32([1, 2]), .int32([3]), .string(["x", "y"]), .array([.float32([4.5]), .bool([true])])])
    }

    /// Compares a value with the fixture's rendering of it.
    func assertValue(_ value: GGUFValue, equals expected: GGUFExpected.Value, _ key: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(value.type.description, expected.type, key, file: file, line: line)
        XCTAssertEqual(render(value), expected.value, key, file: file, line: line)
    }

    /// The fixture's JSON form of a value: floats as bit patterns, arrays as {elementType, items}.
    func render(_ value: GGUFValue) -> JSONValue {
        switch value {
        case .uint8(let v): return .integer(Int64(v))
        case .int8(let v): return .integer(Int64(v))
        case .uint16(let v): return .integer(Int64(v))
        case .int16(let v): return .integer(Int64(v))
        case .uint32(let v): return .integer(Int64(v))
        case .int32(let v): return .integer(Int64(v))
        case .uint64(let v): return v <= UInt64(Int64.max) ? .integer(Int64(v)) : .unsigned(v)
        case .int64(let v): return .integer(v)
        case .float32(let v): return .integer(Int64(v.bitPattern))
        case .float64(let v): return v.bitPattern <= UInt64(Int64.max) ? .integer(Int64(v.bitPattern)) : .unsigned(v.bitPattern)
        case .bool(let v): return .bool(v)
        case .string(let v): return .string(v)
        case .array(let a): return render(a)
        }
    }

    func render(_ array: GGUFArray) -> JSONValue {
        let items: [JSONValue]
        switch array {
        case .uint8(let a): items = a.map { render(.uint8($0)) }
        case .int8(let a): items = a.map { render(.int8($0)) }
        case .uint16(let a): items = a.map { render(.uint16($0)) }
        case .int16(let a): items = a.map { render(.int16($0)) }
        case .uint32(let a): items = a.map { render(.uint32($0)) }
        case .int32(let a): items = a.map { render(.int32($0)) }
        case .uint64(let a): items = a.map { render(.uint64($0)) }
        case .int64(let a): items = a.map { render(.int64($0)) }
        case .float32(let a): items = a.map { render(.float32($0)) }
        case .float64(let a): items = a.map { render(.float64($0)) }
        case .bool(let a): items = a.map { .bool($0) }
        case .string(let a): items = a.map { .string($0) }
        case .array(let a): items = a.map { render($0) }
        }
        return .object(["elementType": .string(array.elementType.description), "items": .array(items)])
    }
}
