import Foundation
import XCTest
import HeedModels

/// Assembles GGUF files byte by byte for tests: valid ones to start from, and
/// broken ones through the `raw` hooks. Records where each numeric field
/// (counts, lengths, type codes, dimensions, offsets) lies, so the fuzzer can
/// aim at them.
struct GGUFTestWriter {
    struct TensorSpec {
        var name: String
        var dimensions: [UInt64]
        var typeCode: UInt32
        var data: [UInt8]
        /// Written as the offset when set; otherwise the packed offset.
        var offset: UInt64?
    }

    /// One metadata entry: a key and its value, or raw bytes after the key.
    enum Entry {
        case value(String, GGUFValue)
        case raw(String, [UInt8])   // the u32 type and the value, as given
    }

    var version: UInt32 = 3
    var entries: [Entry] = []
    var tensors: [TensorSpec] = []
    /// The alignment used to place tensor data (set `general.alignment` yourself to declare it).
    var alignment = 32

    /// (offset, byte width) of every count, length, type code, dimension and offset field.
    private(set) var numericFields: [(offset: Int, width: Int)] = []

    mutating func add(_ key: String, _ value: GGUFValue) { entries.append(.value(key, value)) }

    mutating func addTensor(_ name: String, dimensions: [UInt64], type: GGMLType, data: [UInt8], offset: UInt64? = nil) {
        tensors.append(TensorSpec(name: name, dimensions: dimensions, typeCode: type.rawValue, data: data, offset: offset))
    }

    /// The file's bytes.
    mutating func bytes() -> [UInt8] {
        numericFields = []
        var out: [UInt8] = Array("GGUF".utf8)
        append(&out, version, numeric: true)
        append(&out, UInt64(tensors.count), numeric: true)
        append(&out, UInt64(entries.count), numeric: true)
        for entry in entries {
            switch entry {
            case let .value(key, value):
                appendString(&out, key)
                append(&out, value.type.rawValue, numeric: true)
                appendValue(&out, value)
            case let .raw(key, raw):
                appendString(&out, key)
                out += raw
            }
        }
        // Packed offsets, each tensor padded to the alignment (as GGUFWriter does).
        var packed: [UInt64] = []
        var running: UInt64 = 0
        for tensor in tensors {
            packed.append(running)
            running += UInt64((tensor.data.count + alignment - 1) / alignment * alignment)
        }
        for (tensor, offset) in zip(tensors, packed) {
            appendString(&out, tensor.name)
            append(&out, UInt32(tensor.dimensions.count), numeric: true)
            for dimension in tensor.dimensions { append(&out, dimension, numeric: true) }
            append(&out, tensor.typeCode, numeric: true)
            append(&out, tensor.offset ?? offset, numeric: true)
        }
        guard !tensors.isEmpty else { return out }
        while out.count % alignment != 0 { out.append(0) }
        let dataStart = out.count
        for (tensor, offset) in zip(tensors, packed) {
            let at = dataStart + Int(offset)
            if out.count < at { out += [UInt8](repeating: 0, count: at - out.count) }
            out += tensor.data
        }
        while (out.count - dataStart) % alignment != 0 { out.append(0) }
        return out
    }

    private mutating func append<T: FixedWidthInteger>(_ out: inout [UInt8], _ value: T, numeric: Bool = false) {
        if numeric { numericFields.append((out.count, MemoryLayout<T>.size)) }
        withUnsafeBytes(of: value.littleEndian) { out += $0 }
    }

    private mutating func appendString(_ out: inout [UInt8], _ text: String) {
        append(&out, UInt64(text.utf8.count), numeric: true)
        out += Array(text.utf8)
    }

    private mutating func appendValue(_ out: inout [UInt8], _ value: GGUFValue) {
        switch value {
        case .uint8(let v): append(&out, v)
        case .int8(let v): append(&out, v)
        case .uint16(let v): append(&out, v)
        case .int16(let v): append(&out, v)
        case .uint32(let v): append(&out, v)
        case .int32(let v): append(&out, v)
        case .float32(let v): append(&out, v.bitPattern)
        case .bool(let v): out.append(v ? 1 : 0)
        case .string(let v): appendString(&out, v)
        case .uint64(let v): append(&out, v)
        case .int64(let v): append(&out, v)
        case .float64(let v): append(&out, v.bitPattern)
        case .array(let a): appendArray(&out, a)
        }
    }

    private mutating func appendArray(_ out: inout [UInt8], _ array: GGUFArray) {
        append(&out, array.elementType.rawValue, numeric: true)
        append(&out, UInt64(array.count), numeric: true)
        switch array {
        case .uint8(let a): a.forEach { append(&out, $0) }
        case .int8(let a): a.forEach { append(&out, $0) }
        case .uint16(let a): a.forEach { append(&out, $0) }
        case .int16(let a): a.forEach { append(&out, $0) }
        case .uint32(let a): a.forEach { append(&out, $0) }
        case .int32(let a): a.forEach { append(&out, $0) }
        case .float32(let a): a.forEach { append(&out, $0.bitPattern) }
        case .bool(let a): a.forEach { out.append($0 ? 1 : 0) }
        case .string(let a): a.forEach { appendString(&out, $0) }
        case .uint64(let a): a.forEach { append(&out, $0) }
        case .int64(let a): a.forEach { append(&out, $0) }
        case .float64(let a): a.forEach { append(&out, $0.bitPattern) }
        case .array(let a): a.forEach { appendArray(&out, $0) }
        }
    }
}

// MARK: - Shared helpers for the model tests

/// The repository's `models/` folder (filled by scripts/fetch-models.sh).
func modelsDirectory(file: StaticString = #filePath) -> URL {
    URL(fileURLWithPath: "\(file)").deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models")
}

/// `Tests/Fixtures/models`.
func modelFixtures(file: StaticString = #filePath) -> URL {
    URL(fileURLWithPath: "\(file)").deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("models")
}

/// The fetched model file or folder at `relativePath` under models/. Skips the
/// test when it is missing, with the command that fetches it — except in CI
/// (`CI=true`), where .ci/run fetches the models first and a missing model is
/// a failure, so these tests cannot silently stop running.
func requireModel(_ relativePath: String) throws -> URL {
    let url = modelsDirectory().appendingPathComponent(relativePath)
    guard FileManager.default.fileExists(atPath: url.path) else {
        let message = "models/\(relativePath) is missing: run scripts/fetch-models.sh to fetch the pretrained models"
        if ProcessInfo.processInfo.environment["CI"] == "true" { throw MissingModel(message: message) }
        throw XCTSkip(message)
    }
    return url
}

/// Thrown (failing the test) when CI lacks a model that .ci/run should have fetched.
struct MissingModel: Error, CustomStringConvertible {
    let message: String
    var description: String { "CI: \(message)" }
}

/// Decodes a committed JSON fixture under Tests/Fixtures/models.
func loadJSONFixture<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
    let data = try Data(contentsOf: modelFixtures().appendingPathComponent(name))
    return try JSONDecoder().decode(T.self, from: data)
}

/// Equal as bit patterns, except that any NaN equals any NaN.
func assertSameBits(_ actual: [Float], _ expectedBits: [UInt32], _ message: String = "",
                    file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expectedBits.count, "count \(message)", file: file, line: line)
    for (i, (a, bits)) in zip(actual, expectedBits).enumerated() {
        let e = Float(bitPattern: bits)
        if a.isNaN && e.isNaN { continue }
        if a.bitPattern != bits {
            return XCTFail("element \(i): \(a) (0x\(String(a.bitPattern, radix: 16))) vs expected \(e) (0x\(String(bits, radix: 16))) \(message)",
                           file: file, line: line)
        }
    }
}

/// FNV-1a 64 over the little-endian bytes of `values` (as the fixture scripts compute it).
func fnv1a64(_ values: [Float]) -> String {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for value in values {
        var bits = value.bitPattern.littleEndian
        withUnsafeBytes(of: &bits) { bytes in
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
        }
    }
    return String(format: "%016lx", hash)
}
