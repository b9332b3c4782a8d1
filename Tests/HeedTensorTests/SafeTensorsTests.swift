import Foundation
import XCTest
import HeedTestSupport
@testable import HeedTensor

// MARK: - Helpers shared with SafeTensorsFuzzTests

/// `Tests/Fixtures`, found from this file's path (no resources in Package.swift).
let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures")

/// A safetensors file assembled by hand: length prefix (the header's length
/// unless `declaredLength` says otherwise), header text, data bytes.
func safetensorsBytes(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
    let headerBytes = Array(header.utf8)
    return safetensorsBytes(headerBytes: headerBytes, data: data, declaredLength: declaredLength)
}

func safetensorsBytes(headerBytes: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
    var length = (declaredLength ?? UInt64(headerBytes.count)).littleEndian
    var bytes = withUnsafeBytes(of: &length) { [UInt8]($0) }
    bytes += headerBytes
    bytes += data
    return Data(bytes)
}

/// Opens `data`, expecting exactly `expected`.
func assertRejected(_ data: Data, _ expected: SafeTensorsError, file: StaticString = #filePath, line: UInt = #line) {
    do {
        let opened = try SafeTensorsFile(data: data)
        XCTFail("accepted (tensors \(opened.names)); expected \(expected)", file: file, line: line)
    } catch {   // typed: SafeTensorsError
        XCTAssertEqual(error, expected, file: file, line: line)
    }
}

/// Opens `data`, expecting an `.invalidJSON` error at `offset`.
func assertInvalidJSON(_ data: Data, at offset: Int, file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try SafeTensorsFile(data: data)
        XCTFail("accepted; expected invalid JSON", file: file, line: line)
    } catch {
        guard case .invalidJSON(_, let byteOffset) = error else {
            return XCTFail("expected invalidJSON, got \(error)", file: file, line: line)
        }
        XCTAssertEqual(byteOffset, offset, "\(error)", file: file, line: line)
    }
}

/// Equal as bit patterns, except that any NaN equals any NaN.
func assertSameFloats(_ actual: [Float], _ expected: [Float], _ message: String = "",
                      file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, message, file: file, line: line)
    for (i, (a, e)) in zip(actual, expected).enumerated() where !(a.isNaN && e.isNaN) && a.bitPattern != e.bitPattern {
        return XCTFail("element \(i): \(a) vs expected \(e) \(message)", file: file, line: line)
    }
}

/// The result of running the reference Python tooling.
struct PythonResult {
    let status: Int32
    let stdout: Data
    let stderr: String
}

/// Runs `python3 arguments…`, or returns nil when python3 cannot be started.
func runPython(_ arguments: [String]) -> PythonResult? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3"] + arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    do { try process.run() } catch { return nil }
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return PythonResult(status: process.terminationStatus, stdout: stdout, stderr: String(decoding: stderr, as: UTF8.self))
}

/// Skips the calling test unless python3 can import the official library
/// (and NumPy; and ml_dtypes when `mlDtypes`).
func requireReferenceLibrary(mlDtypes: Bool = false) throws {
    let imports = mlDtypes ? "import safetensors, numpy, ml_dtypes" : "import safetensors, numpy"
    guard let result = runPython(["-c", imports]), result.status == 0 else {
        throw XCTSkip("python3 with `\(imports)` is not available (pip install safetensors numpy ml_dtypes)")
    }
}

/// A fresh empty directory for one test.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("heed-safetensors-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

// MARK: - Tests

final class SafeTensorsTests: XCTestCase {
    // MARK: Round trips

    func testFloatDTypesRoundTripWithIndependentlyRoundedValues() throws {
        let specials: [Float] = [0, -0.0, .infinity, -.infinity, 65520, 65519.99, 1e-8, 3.3895314e38, .greatestFiniteMagnitude, 0x1p-140]
        let values = Tensor.randomNormal([20], std: 10, seed: 7).scalars + specials
        let x = Tensor(values, shape: [5, 6])
        let data = try SafeTensors.serialize([
            .init("x.f32", x, as: .float32), .init("x.f64", x, as: .float64),
            .init("x.f16", x, as: .float16), .init("x.bf16", x, as: .bfloat16),
        ], metadata: ["format": "pt"])
        let file = try SafeTensorsFile(data: data)
        XCTAssertEqual(Set(file.names), ["x.f32", "x.f64", "x.f16", "x.bf16"])
        XCTAssertEqual(file.metadata, ["format": "pt"])
        for name in file.names { XCTAssertEqual(try file.info(name).shape, [5, 6]) }
        XCTAssertEqual(try file.info("x.f16").dtype, .float16)
        XCTAssertEqual(try file.info("x.bf16").dataOffsets.count, 60)
        XCTAssertEqual(try file.info("x.f64").dataOffsets.count, 240)

        assertSameFloats(try file.tensor("x.f32").scalars, values)
        assertSameFloats(try file.tensor("x.f64").scalars, values)
        assertSameFloats(try file.tensor("x.f16").scalars, values.map { Float(Float16($0)) })
        assertSameFloats(try file.tensor("x.bf16").scalars, values.map { Float(bfloat16Reference($0)) })
        // Stored bytes: F64 holds the exact f64 of each value, little-endian.
        let f64 = try file.rawBytes("x.f64")
        for (i, value) in values.enumerated() {
            let bits = (0..<8).reduce(UInt64(0)) { $0 | UInt64(f64[8 * i + $1]) << (8 * $1) }
            XCTAssertEqual(bits, Double(value).bitPattern)
        }
    }

    func testNaNRoundTripsInEveryFloatDType() throws {
        let x = Tensor([.nan, 1], shape: [2])
        let file = try SafeTensorsFile(data: SafeTensors.serialize(
            [.init("a", x, as: .float32), .init("b", x, as: .float64), .init("c", x, as: .float16), .init("d", x, as: .bfloat16)]))
        for name in ["a", "b", "c", "d"] {
            let read = try file.tensor(name).scalars
            XCTAssertTrue(read[0].isNaN, name)
            XCTAssertEqual(read[1], 1, name)
        }
    }

    func testIntegerDTypesRoundTripAtTheirLimits() throws {
        let cases: [(DType, [Int])] = [
            (.int64, [Int.min, -1, 0, 1, Int.max, 1 << 53 + 1]),
            (.uint64, [0, 1, Int.max]),
            (.int32, [Int(Int32.min), -7, 0, Int(Int32.max)]),
            (.uint32, [0, 16_777_217, Int(UInt32.max)]),
            (.int16, [Int(Int16.min), -1, Int(Int16.max)]),
            (.uint16, [0, 300, Int(UInt16.max)]),
            (.int8, [-128, -5, 0, 127]),
            (.uint8, [0, 17, 255]),
            (.bool, [1, 0, 0, 1]),
        ]
        let entries = cases.map { SafeTensors.Entry("ids.\($0.0)", IndexTensor($0.1), as: $0.0) }
        let file = try SafeTensorsFile(data: SafeTensors.serialize(entries))
        for (dtype, values) in cases {
            let name = "ids.\(dtype)"
            XCTAssertEqual(try file.info(name).dtype, dtype)
            XCTAssertEqual(try file.indices(name), IndexTensor(values), name)
            XCTAssertEqual(try file.tensor(name).scalars, values.map { Float($0) }, name)
            XCTAssertEqual(try file.rawBytes(name).count, values.count * (dtype.byteSize ?? 0), name)
        }
        // Little-endian two's complement on disk.
        XCTAssertEqual(try file.rawBytes("ids.I32"), [0, 0, 0, 0x80, 0xF9, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F])
    }

    func testMetadataRoundTripsAnyStrings() throws {
        let metadata = ["format": "pt", "": "empty key", "quote\"back\\slash": "line\nbreak\ttab\u{1}\u{7F}",
                        "naïve ✓": "𝄞 emoji 🤗", "e\u{301}": "decomposed"]
        let file = try SafeTensorsFile(data: SafeTensors.serialize([String: Tensor](), metadata: metadata))
        XCTAssertEqual(file.metadata, metadata)
        XCTAssertTrue(file.names.isEmpty)
        // Keys that Swift's String == equates cannot both live in a [String: String]: rejected, not merged.
        assertRejected(safetensorsBytes(#"{"__metadata__":{"\u00e9":"a","e\u0301":"b"}}"#), .invalidMetadata(reason: "has the key \"e\u{301}\" twice"))
    }

    func testZeroElementAndScalarTensors() throws {
        let data = try SafeTensors.serialize([
            .init("empty", Tensor.zeros([0, 3])), .init("scalar", Tensor(scalar: -2.5), as: .float16),
            .init("empty.f16", Tensor.zeros([4, 0]), as: .float16), .init("no.ids", IndexTensor([], shape: [0]), as: .int32),
        ])
        let file = try SafeTensorsFile(data: data)
        let empty = try file.tensor("empty")
        XCTAssertEqual(empty.shape, [0, 3])
        XCTAssertEqual(empty.count, 0)
        XCTAssertEqual(try file.tensor("empty.f16").shape, [4, 0])
        let scalar = try file.tensor("scalar")
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.item(), -2.5)
        XCTAssertEqual(try file.indices("no.ids"), IndexTensor([], shape: [0]))
        XCTAssertEqual(try file.info("empty").dataOffsets.count, 0)
    }

    func testLayoutFollowsTheReferenceWriter() throws {
        let data = try SafeTensors.serialize([
            .init("b", Tensor([1, 2, 3], shape: [3]), as: .float16), .init("a", Tensor([1], shape: [1]), as: .float16),
            .init("w", Tensor([1, 2], shape: [2])), .init("ids", IndexTensor([1, 2, 3]), as: .int64),
            .init("mask", IndexTensor([1, 0, 1]), as: .bool),
        ], metadata: ["z": "1", "a": "2"])
        let bytes = [UInt8](data)
        let headerLength = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        XCTAssertEqual(headerLength % 8, 0, "header padded to a multiple of 8")
        let header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        let expected = #"{"__metadata__":{"a":"2","z":"1"},"ids":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},"#
            + #""w":{"dtype":"F32","shape":[2],"data_offsets":[24,32]},"a":{"dtype":"F16","shape":[1],"data_offsets":[32,34]},"#
            + #""b":{"dtype":"F16","shape":[3],"data_offsets":[34,40]},"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[40,43]}}"#
        XCTAssertEqual(header.trimmingCharacters(in: .whitespaces), expected)
        XCTAssertEqual(header.count - expected.count, (8 - expected.utf8.count % 8) % 8)
        XCTAssertEqual(bytes.count, 8 + headerLength + 43)
    }

    func testNameOrderingAndLookupAreByteWise() throws {
        // Canonically equivalent names are different tensors, as in the reference implementation.
        // (A [String: Tensor] literal cannot even hold both: Swift equates the keys.)
        let file = try SafeTensorsFile(data: SafeTensors.serialize([.init("é", Tensor([1], shape: [1])), .init("e\u{301}", Tensor([2], shape: [1]))]))
        XCTAssertEqual(file.names.count, 2)
        XCTAssertEqual(try file.tensor("é").scalars, [1])
        XCTAssertEqual(try file.tensor("e\u{301}").scalars, [2])
        XCTAssertTrue(file.contains("é"))
        XCTAssertFalse(file.contains("e"))
    }

    // MARK: Files

    func testMappedFileMatchesInMemoryAndWriteIsAtomic() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.safetensors")
        let first = Tensor.randomNormal([4, 8], seed: 1)
        try SafeTensors.write(["w": first], as: .bfloat16, metadata: ["v": "1"], to: url)
        let mapped = try SafeTensorsFile(url: url)
        let inMemory = try SafeTensorsFile(data: Data(contentsOf: url))
        XCTAssertEqual(try mapped.tensor("w").scalars, try inMemory.tensor("w").scalars)
        XCTAssertEqual(try mapped.tensor("w").scalars, first.rounded(to: .bfloat16).scalars)
        XCTAssertEqual(try Data(contentsOf: url), try SafeTensors.serialize(["w": first], as: .bfloat16, metadata: ["v": "1"]))

        // Overwrite while mapped: the open file keeps its contents, a new open sees the new ones.
        let second = Tensor.randomNormal([2, 2], seed: 2)
        try SafeTensors.write([(name: "w", tensor: second, dtype: .float32)], metadata: ["v": "2"], to: url)
        XCTAssertEqual(try mapped.tensor("w").scalars, first.rounded(to: .bfloat16).scalars)
        XCTAssertEqual(mapped.metadata, ["v": "1"])
        XCTAssertEqual(try SafeTensorsFile(url: url).tensor("w").scalars, second.scalars)

        // A rejected write leaves the destination as it was, and no temporary file behind.
        let before = try Data(contentsOf: url)
        XCTAssertThrowsError(try SafeTensors.write([.init("ids", IndexTensor([1 << 40]), as: .int32)], to: url)) { error in
            XCTAssertEqual(error as? SafeTensorsError, .valueOutOfRange(tensor: "ids", value: "1099511627776", dtype: .int32))
        }
        XCTAssertEqual(try Data(contentsOf: url), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["model.safetensors"])
    }

    func testFileErrorsAreThrown() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("missing.safetensors")
        XCTAssertThrowsError(try SafeTensorsFile(url: missing)) { error in
            XCTAssertEqual(error as? SafeTensorsError, .io(operation: "open", path: missing.path, errno: ENOENT))
            XCTAssertTrue("\(error)".contains("No such file"), "\(error)")
        }
        XCTAssertThrowsError(try SafeTensorsFile(url: directory)) { error in
            guard case .io(_, _, let code) = error as? SafeTensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(code, EISDIR)
        }
        let empty = directory.appendingPathComponent("empty.safetensors")
        try Data().write(to: empty)
        XCTAssertThrowsError(try SafeTensorsFile(url: empty)) { XCTAssertEqual($0 as? SafeTensorsError, .fileTooShort(byteCount: 0)) }
        let nowhere = directory.appendingPathComponent("no/such/dir/x.safetensors")
        XCTAssertThrowsError(try SafeTensors.write(["a": Tensor.zeros([1])], to: nowhere)) { error in
            guard case .io(let operation, _, let code) = error as? SafeTensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(operation, "create")
            XCTAssertEqual(code, ENOENT)
        }
    }

    // MARK: The official library

    func testReadsFixtureWrittenByOfficialLibrary() throws {
        let file = try SafeTensorsFile(url: fixturesDirectory.appendingPathComponent("reference.safetensors"))
        let expectedData = try Data(contentsOf: fixturesDirectory.appendingPathComponent("reference.json"))
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: expectedData) as? [String: Any])
        XCTAssertEqual(file.metadata, expected["metadata"] as? [String: String])
        XCTAssertEqual(file.metadata["note"], "naïve ✓ \"quoted\" back\\slash\nnew line")
        let tensors = try XCTUnwrap(expected["tensors"] as? [String: [String: Any]])
        XCTAssertEqual(Set(file.names), Set(tensors.keys))
        XCTAssertGreaterThanOrEqual(tensors.count, 15)
        for (name, entry) in tensors {
            let info = try file.info(name)
            XCTAssertEqual(info.dtype.rawValue, entry["dtype"] as? String, name)
            XCTAssertEqual(info.shape, entry["shape"] as? [Int], name)
            let bits = try XCTUnwrap(entry["float32_bits"] as? [String]).map { Float(bitPattern: UInt32($0, radix: 16)!) }
            assertSameFloats(try file.tensor(name).scalars, bits, name)
            if let integers = entry["integers"] as? [String] {
                if integers.allSatisfy({ Int($0) != nil }) {
                    XCTAssertEqual(try file.indices(name).values, integers.map { Int($0)! }, name)
                } else {
                    XCTAssertThrowsError(try file.indices(name), name) { error in
                        XCTAssertEqual(error as? SafeTensorsError, .valueOutOfRange(tensor: name, value: integers.first { Int($0) == nil }!, dtype: .uint64))
                    }
                }
            }
        }
        XCTAssertEqual(try file.tensor("scalar").shape, [])
        XCTAssertEqual(try file.tensor("empty").shape, [0, 3])
    }

    func testFloat8DecodingMatchesMLDtypes() throws {
        let file = try SafeTensorsFile(url: fixturesDirectory.appendingPathComponent("float8.safetensors"))
        let float8Types: [DType] = [.float8E4M3, .float8E5M2, .float8E4M3FNUZ, .float8E5M2FNUZ, .float8E8M0]
        for dtype in float8Types {
            XCTAssertEqual(try file.info(dtype.rawValue).dtype, dtype)
            XCTAssertEqual(try file.rawBytes(dtype.rawValue), (0...255).map { UInt8($0) })
            let expected = try file.tensor(dtype.rawValue + ".expected")    // F32, converted by ml_dtypes
            XCTAssertEqual(try file.info(dtype.rawValue + ".expected").dtype, .float32)
            assertSameFloats(try file.tensor(dtype.rawValue).scalars, expected.scalars, "\(dtype)")
            XCTAssertGreaterThan(expected.scalars.filter(\.isNaN).count, 0, "\(dtype) has a NaN")
        }
    }

    func testFloat8E5M2IsTheTopByteOfFloat16() throws {
        let bytes = (0...255).map { UInt8($0) }
        let header = #"{"x":{"dtype":"F8_E5M2","shape":[256],"data_offsets":[0,256]}}"#
        let decoded = try SafeTensorsFile(data: safetensorsBytes(header, data: bytes)).tensor("x").scalars
        let expected = bytes.map { Float(Float16(bitPattern: UInt16($0) << 8)) }
        assertSameFloats(decoded, expected)
    }

    func testOfficialLibraryReadsHeedFilesAndWritesTheSameBytes() throws {
        try requireReferenceLibrary(mlDtypes: true)
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let heedURL = directory.appendingPathComponent("heed.safetensors")
        let officialURL = directory.appendingPathComponent("official.safetensors")
        let x = Tensor(Tensor.randomNormal([11], std: 1000, seed: 3).scalars + [0, -0.0, .infinity, 70000, 1e-7], shape: [4, 4])
        let ids = [Int.min, -1, 0, 1 << 40, Int.max]
        let entries: [SafeTensors.Entry] = [
            .init("x.f32", x), .init("x.f16", x, as: .float16), .init("x.bf16", x, as: .bfloat16), .init("x.f64", x, as: .float64),
            .init("scalar", Tensor(scalar: 0.1)), .init("empty", Tensor.zeros([0, 2]), as: .float16),
            .init("ids.i64", IndexTensor(ids), as: .int64), .init("ids.i32", IndexTensor([-5, 2_000_000_000], shape: [2, 1]), as: .int32),
            .init("ids.u8", IndexTensor([0, 255]), as: .uint8), .init("mask", IndexTensor([1, 0]), as: .bool),
            .init("ids.u64", IndexTensor([Int.max]), as: .uint64), .init("ids.i16", IndexTensor([-32768]), as: .int16),
            .init("odd \"name\"\\/\t\u{1}\u{7F}é", Tensor([2], shape: [1])),      // JSON escaping must match serde_json's
        ]
        let metadata = ["producer": "Heed ✓\n\u{1F}"]   // one key: the official writer's key order is a hash order
        try SafeTensors.write(entries, metadata: metadata, to: heedURL)

        let result = try XCTUnwrap(runPython([fixturesDirectory.appendingPathComponent("read_with_reference_safetensors.py").path,
                                              heedURL.path, officialURL.path]))
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        XCTAssertEqual(json["metadata"] as? [String: String], metadata)
        let tensors = try XCTUnwrap(json["tensors"] as? [String: [String: Any]])
        XCTAssertEqual(Set(tensors.keys), Set(entries.map(\.name)))
        func values(_ name: String) -> [String] { tensors[name]?["values"] as? [String] ?? [] }
        func doubles(_ name: String) -> [Double] { values(name).map { Double($0) ?? .nan } }   // float.hex() strings

        XCTAssertEqual(doubles("x.f32"), x.scalars.map(Double.init))
        XCTAssertEqual(doubles("x.f64"), x.scalars.map(Double.init))
        XCTAssertEqual(doubles("x.f16"), x.scalars.map { Double(Float16($0)) })
        XCTAssertEqual(doubles("x.bf16"), x.scalars.map(bfloat16Reference))
        XCTAssertEqual(doubles("scalar"), [Double(Float(0.1))])
        XCTAssertEqual(tensors["scalar"]?["shape"] as? [Int], [])
        XCTAssertEqual(tensors["empty"]?["shape"] as? [Int], [0, 2])
        XCTAssertEqual(tensors["x.bf16"]?["dtype"] as? String, "BF16")
        XCTAssertEqual(values("ids.i64"), ids.map(String.init))
        XCTAssertEqual(values("ids.i32"), ["-5", "2000000000"])
        XCTAssertEqual(tensors["ids.i32"]?["shape"] as? [Int], [2, 1])
        XCTAssertEqual(values("ids.u8"), ["0", "255"])
        XCTAssertEqual(values("mask"), ["1", "0"])
        XCTAssertEqual(values("ids.u64"), [String(Int.max)])
        XCTAssertEqual(values("ids.i16"), ["-32768"])
        XCTAssertEqual(doubles("odd \"name\"\\/\t\u{1}\u{7F}é"), [2])
        // The official writer, given the arrays it read, produces Heed's bytes exactly.
        XCTAssertEqual(try Data(contentsOf: officialURL), try Data(contentsOf: heedURL))
    }

    // MARK: Accepted edge cases (as the reference implementation accepts them)

    func testAcceptsWhatTheReferenceAccepts() throws {
        XCTAssertEqual(try SafeTensorsFile(data: safetensorsBytes("{}")).names, [])
        XCTAssertEqual(try SafeTensorsFile(data: safetensorsBytes("\t\n{}\r ")).names, [], "whitespace around the object")
        XCTAssertEqual(try SafeTensorsFile(data: safetensorsBytes(#"{"__metadata__":null}"#)).metadata, [:])
        let zero = try SafeTensorsFile(data: safetensorsBytes(#"{"test":{"dtype":"I32","shape":[2,0],"data_offsets":[0, 0]}}"#))
        XCTAssertEqual(try zero.indices("test"), IndexTensor([], shape: [2, 0]))
        let scalar = try SafeTensorsFile(data: safetensorsBytes(#"{"test":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}"#, data: [7, 0, 0, 0]))
        XCTAssertEqual(try scalar.indices("test"), IndexTensor([7], shape: []))
        // Header order differs from data order; unknown fields ignored; escaped names.
        let header = #"{"b":{"shape":[1],"data_offsets":[4,8],"dtype":"F32","extra":{"x":[1,2]}},"#
            + #""\u00e9\ud834\udd1e":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"z":{"dtype":"U8","shape":[0],"data_offsets":[8,8]}}"#
        let file = try SafeTensorsFile(data: safetensorsBytes(header, data: [0, 0, 128, 63, 0, 0, 0, 64]))
        XCTAssertEqual(file.names, ["b", "é𝄞", "z"])
        XCTAssertEqual(try file.tensor("é𝄞").scalars, [1])
        XCTAssertEqual(try file.tensor("b").scalars, [2])
        XCTAssertEqual(try file.indices("z").values, [])
        // Several empty tensors at one offset, and data that starts at an odd file offset.
        let odd = #"{"a":{"dtype":"F16","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"c":{"dtype":"I64","shape":[0,5],"data_offsets":[4,4]}} "#
        XCTAssertEqual(odd.utf8.count % 2, 1)
        XCTAssertEqual(try SafeTensorsFile(data: safetensorsBytes(odd, data: [0, 0, 192, 63])).tensor("b").scalars, [1.5])
    }

    // MARK: Malformed files: framing

    func testRejectsBadFraming() {
        assertRejected(Data(), .fileTooShort(byteCount: 0))
        assertRejected(Data([2, 0, 0, 0, 0, 0, 0]), .fileTooShort(byteCount: 7))
        assertRejected(safetensorsBytes("{}", declaredLength: 100_000_001), .headerTooLarge(declared: 100_000_001, limit: 100_000_000))
        assertRejected(safetensorsBytes("{}", declaredLength: .max), .headerTooLarge(declared: .max, limit: 100_000_000))
        assertRejected(safetensorsBytes("{}", declaredLength: 1 << 63), .headerTooLarge(declared: 1 << 63, limit: 100_000_000))
        assertRejected(safetensorsBytes("{}", declaredLength: 3), .headerPastEndOfFile(declared: 3, fileSize: 10))
        assertRejected(safetensorsBytes("", declaredLength: 60), .headerPastEndOfFile(declared: 60, fileSize: 8))
        assertRejected(safetensorsBytes(headerBytes: Array(#"{"\#u{FF}":1}"#.utf8).map { $0 == 0xC3 ? 0xFF : $0 }), .headerNotUTF8(byteOffset: 2))
        assertRejected(safetensorsBytes(headerBytes: [0x7B, 0x22, 0xC0, 0xAF, 0x22, 0x7D]), .headerNotUTF8(byteOffset: 2))     // overlong "/"
        assertRejected(safetensorsBytes(headerBytes: [0x7B, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x7D]), .headerNotUTF8(byteOffset: 2)) // surrogate
        assertRejected(safetensorsBytes(headerBytes: [0x7B, 0x22, 0xE2, 0x9C]), .headerNotUTF8(byteOffset: 2))                    // cut short
    }

    func testRejectsInvalidJSON() {
        assertInvalidJSON(safetensorsBytes("{"), at: 1)
        assertInvalidJSON(safetensorsBytes(""), at: 0)
        assertInvalidJSON(safetensorsBytes("{}x"), at: 2)
        assertInvalidJSON(safetensorsBytes(headerBytes: [0x7B, 0x7D, 0, 0]), at: 2)          // NUL padding, not spaces
        assertInvalidJSON(safetensorsBytes(#"{"a":1,}"#), at: 7)
        assertInvalidJSON(safetensorsBytes("{'a':1}"), at: 1)
        assertInvalidJSON(safetensorsBytes(#"{"a":01}"#), at: 6)
        assertInvalidJSON(safetensorsBytes(#"{"a":-}"#), at: 6)
        assertInvalidJSON(safetensorsBytes(#"{"a":1.}"#), at: 7)
        assertInvalidJSON(safetensorsBytes(#"{"a":tru}"#), at: 8)
        assertInvalidJSON(safetensorsBytes(#"{"\ud800":1}"#), at: 8)
        assertInvalidJSON(safetensorsBytes(#"{"\udc00":1}"#), at: 8)
        assertInvalidJSON(safetensorsBytes(#"{"\x":1}"#), at: 3)
        assertInvalidJSON(safetensorsBytes("{\"a\nb\":1}"), at: 3)
        assertInvalidJSON(safetensorsBytes(#"{"a" 1}"#), at: 5)
        assertInvalidJSON(safetensorsBytes(#"{"a":"unterminated}"#), at: 19)
        let deep = #"{"a":"# + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "}"
        assertInvalidJSON(safetensorsBytes(deep), at: 5 + 126)   // 127 levels, the object included, as serde_json
        let fine = #"{"__metadata__":{"x":"y"},"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"deep":"# + String(repeating: "[", count: 120) + String(repeating: "]", count: 120) + "}}"
        XCTAssertNoThrow(try SafeTensorsFile(data: safetensorsBytes(fine)), "nesting below the limit is fine")
    }

    func testRejectsHeaderThatIsNotAnObject() {
        assertRejected(safetensorsBytes("[]"), .headerNotObject(found: "an array"))
        assertRejected(safetensorsBytes(#" "F32" "#), .headerNotObject(found: "the string \"F32\""))
        assertRejected(safetensorsBytes("null"), .headerNotObject(found: "null"))
        assertRejected(safetensorsBytes("12"), .headerNotObject(found: "the number 12"))
    }

    // MARK: Malformed files: entries

    func testRejectsBadEntries() {
        assertRejected(safetensorsBytes(#"{"w":3}"#), .invalidEntry(tensor: "w", reason: "entry is the number 3, not an object"))
        assertRejected(safetensorsBytes(#"{"w":{"shape":[],"data_offsets":[0,0]}}"#), .invalidEntry(tensor: "w", reason: "missing field \"dtype\""))
        assertRejected(safetensorsBytes(#"{"w":{"dtype":"F32","data_offsets":[0,0]}}"#), .invalidEntry(tensor: "w", reason: "missing field \"shape\""))
        assertRejected(safetensorsBytes(#"{"w":{"dtype":"F32","shape":[0]}}"#), .invalidEntry(tensor: "w", reason: "missing field \"data_offsets\""))
        assertRejected(safetensorsBytes(#"{"w":{"dtype":32,"shape":[0],"data_offsets":[0,0]}}"#), .invalidEntry(tensor: "w", reason: "dtype is the number 32, not a string"))
        assertRejected(safetensorsBytes(#"{"w":{"dtype":"F32","dtype":"F16","shape":[0],"data_offsets":[0,0]}}"#),
                       .invalidEntry(tensor: "w", reason: "field \"dtype\" appears twice"))
        assertRejected(safetensorsBytes(#"{"w":{"dtype":"F31","shape":[0],"data_offsets":[0,0]}}"#), .unknownDType(tensor: "w", dtype: "F31"))
        assertRejected(safetensorsBytes(#"{"w":{"dtype":"f32","shape":[0],"data_offsets":[0,0]}}"#), .unknownDType(tensor: "w", dtype: "f32"))
    }

    func testRejectsBadShapes() {
        func entry(_ shape: String) -> Data {
            safetensorsBytes(#"{"w":{"dtype":"F32","shape":"# + shape + #","data_offsets":[0,0]}}"#)
        }
        assertRejected(entry("2"), .invalidShape(tensor: "w", reason: "shape is the number 2, not an array"))
        assertRejected(entry("[2,-1]"), .invalidShape(tensor: "w", reason: "dimension 1: -1 is negative"))
        assertRejected(entry("[2.0]"), .invalidShape(tensor: "w", reason: "dimension 0: 2.0 is not an integer"))
        assertRejected(entry("[1e3]"), .invalidShape(tensor: "w", reason: "dimension 0: 1e3 is not an integer"))
        assertRejected(entry("[0,99999999999999999999]"), .invalidShape(tensor: "w", reason: "dimension 1: 99999999999999999999 is too large"))
        assertRejected(entry(#"[0,"3"]"#), .invalidShape(tensor: "w", reason: "dimension 1 is the string \"3\", not an integer"))
        assertRejected(entry("[null]"), .invalidShape(tensor: "w", reason: "dimension 0 is null, not an integer"))
    }

    func testRejectsSizesThatOverflowOrDisagree() {
        // The reference implementation's own overflow cases.
        assertRejected(safetensorsBytes(#"{"test":{"dtype":"I32","shape":[2,9223372036854775807],"data_offsets":[0,16]}}"#, data: Array(repeating: 0, count: 16)),
                       .sizeOverflow(tensor: "test"))
        assertRejected(safetensorsBytes(#"{"test":{"dtype":"I32","shape":[4611686018427387904],"data_offsets":[0,16]}}"#, data: Array(repeating: 0, count: 16)),
                       .sizeOverflow(tensor: "test"))
        assertRejected(safetensorsBytes(#"{"test":{"dtype":"I32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}"#),
                       .sizeOverflow(tensor: "test"))
        assertRejected(safetensorsBytes(#"{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                       .byteCountMismatch(tensor: "test", dtype: .int32, shape: [2, 2], expected: 16, actual: 4))
        assertRejected(safetensorsBytes(#"{"test":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#, data: [0, 0]),
                       .misalignedSize(tensor: "test", bits: 12))
        // A whole number of bytes is fine for F4; the values are not interpreted.
        let f4 = try? SafeTensorsFile(data: safetensorsBytes(#"{"test":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}"#, data: [0x12, 0x34]))
        XCTAssertEqual(try f4?.rawBytes("test"), [0x12, 0x34])
        XCTAssertThrowsError(try f4?.tensor("test")) { XCTAssertEqual($0 as? SafeTensorsError, .cannotConvert(tensor: "test", dtype: .float4, to: "Float")) }
    }

    func testRejectsBadOffsets() {
        func entry(_ offsets: String, data: Int = 8) -> Data {
            safetensorsBytes(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":"# + offsets + "}}", data: Array(repeating: 0, count: data))
        }
        assertRejected(entry("[0]"), .invalidOffsets(tensor: "w", reason: "data_offsets is an array, not an array of two integers"))
        assertRejected(entry("[0,4,8]"), .invalidOffsets(tensor: "w", reason: "data_offsets is an array, not an array of two integers"))
        assertRejected(entry(#""0,8""#), .invalidOffsets(tensor: "w", reason: "data_offsets is the string \"0,8\", not an array of two integers"))
        assertRejected(entry("[-8,0]"), .invalidOffsets(tensor: "w", reason: "-8 is negative"))
        assertRejected(entry("[-0,8]"), .invalidOffsets(tensor: "w", reason: "-0 is negative"))   // serde_json: a float
        assertRejected(entry("[0,8.5]"), .invalidOffsets(tensor: "w", reason: "8.5 is not an integer"))
        assertRejected(entry("[0,true]"), .invalidOffsets(tensor: "w", reason: "true is not an integer"))
        assertRejected(entry("[8,0]"), .reversedOffsets(tensor: "w", begin: 8, end: 0))
        assertRejected(entry("[0,8]", data: 6), .offsetsPastEnd(tensor: "w", end: 8, dataSize: 6))
        assertRejected(entry("[0,9223372036854775807]"), .offsetsPastEnd(tensor: "w", end: Int.max, dataSize: 8))
        assertRejected(entry("[0,18446744073709551615]"), .invalidOffsets(tensor: "w", reason: "18446744073709551615 is too large"))
    }

    func testRejectsDataThatIsNotTiledExactly() {
        let a = #""a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
        assertRejected(safetensorsBytes("{" + a + #","b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: Array(repeating: 0, count: 12)),
                       .overlappingTensors("a", "b"))
        assertRejected(safetensorsBytes("{" + a + #","b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)),
                       .overlappingTensors("a", "b"))
        assertRejected(safetensorsBytes("{" + a + #","b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#, data: Array(repeating: 0, count: 8)),
                       .overlappingTensors("a", "b"))
        assertRejected(safetensorsBytes("{" + a + #","b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#, data: Array(repeating: 0, count: 16)),
                       .gapInData(offset: 8, length: 4, before: "b"))
        assertRejected(safetensorsBytes(#"{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: Array(repeating: 0, count: 8)),
                       .gapInData(offset: 0, length: 4, before: "b"))
        // The reference implementation's "polyglot" case: bytes after the last tensor.
        assertRejected(safetensorsBytes("{" + a + "}", data: Array(repeating: 0, count: 8) + Array("extra_bogus_data".utf8)),
                       .trailingBytes(offset: 8, count: 16))
        assertRejected(safetensorsBytes("{}", data: [1]), .trailingBytes(offset: 0, count: 1))
    }

    func testRejectsDuplicateNamesAndBadMetadata() {
        let entry = #"{"dtype":"F32","shape":[0],"data_offsets":[0,0]}"#
        assertRejected(safetensorsBytes(#"{"w":"# + entry + #","w":"# + entry + "}"), .duplicateName("w"))
        assertRejected(safetensorsBytes(#"{"w":"# + entry + #","\u0077":"# + entry + "}"), .duplicateName("w"))
        assertRejected(safetensorsBytes(#"{"__metadata__":{"a":1}}"#), .invalidMetadata(reason: "value for key \"a\" is the number 1, not a string"))
        assertRejected(safetensorsBytes(#"{"__metadata__":{"a":null}}"#), .invalidMetadata(reason: "value for key \"a\" is null, not a string"))
        assertRejected(safetensorsBytes(#"{"__metadata__":{"a":"x","a":"y"}}"#), .invalidMetadata(reason: "has the key \"a\" twice"))
        assertRejected(safetensorsBytes(#"{"__metadata__":["a"]}"#), .invalidMetadata(reason: "is an array, not an object of strings"))
        assertRejected(safetensorsBytes(#"{"__metadata__":{},"__metadata__":{}}"#), .invalidMetadata(reason: "appears twice"))
    }

    // MARK: Access and writing errors

    func testAccessErrors() throws {
        let header = #"{"c":{"dtype":"C64","shape":[1],"data_offsets":[0,8]},"u":{"dtype":"U64","shape":[2],"data_offsets":[8,24]},"#
            + #""f":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}}"#
        let data = Array(repeating: UInt8(0), count: 8) + [5, 0, 0, 0, 0, 0, 0, 0] + Array(repeating: 0xFF, count: 8) + [0, 0, 0, 0]
        let file = try SafeTensorsFile(data: safetensorsBytes(header, data: data))
        XCTAssertThrowsError(try file.tensor("nope")) { XCTAssertEqual($0 as? SafeTensorsError, .tensorNotFound("nope")) }
        XCTAssertThrowsError(try file.info("nope")) { XCTAssertEqual($0 as? SafeTensorsError, .tensorNotFound("nope")) }
        XCTAssertThrowsError(try file.rawBytes("nope")) { XCTAssertEqual($0 as? SafeTensorsError, .tensorNotFound("nope")) }
        XCTAssertThrowsError(try file.tensor("c")) { XCTAssertEqual($0 as? SafeTensorsError, .cannotConvert(tensor: "c", dtype: .complex64, to: "Float")) }
        XCTAssertThrowsError(try file.indices("f")) { XCTAssertEqual($0 as? SafeTensorsError, .cannotConvert(tensor: "f", dtype: .float32, to: "Int")) }
        XCTAssertThrowsError(try file.indices("u")) { XCTAssertEqual($0 as? SafeTensorsError, .valueOutOfRange(tensor: "u", value: "18446744073709551615", dtype: .uint64)) }
        XCTAssertThrowsError(try file.tensors()) { XCTAssertEqual($0 as? SafeTensorsError, .cannotConvert(tensor: "c", dtype: .complex64, to: "Float")) }
        XCTAssertEqual(try file.tensor("u").scalars, [5, 0x1p64])
        XCTAssertEqual(try file.withRawBytes("c") { $0.count }, 8)
    }

    func testWriterRejectsBadRequestsBeforeWriting() {
        func assertWriteFails(_ entries: [SafeTensors.Entry], _ expected: SafeTensorsError, line: UInt = #line) {
            XCTAssertThrowsError(try SafeTensors.serialize(entries), line: line) { XCTAssertEqual($0 as? SafeTensorsError, expected, line: line) }
        }
        let t = Tensor([1, 2], shape: [2])
        assertWriteFails([.init("__metadata__", t)], .reservedName("__metadata__"))
        assertWriteFails([.init("w", t), .init("w", t, as: .float16)], .duplicateName("w"))
        assertWriteFails([.init("w", t, as: .int64)], .cannotConvert(tensor: "w", dtype: .int64, to: "Float"))
        assertWriteFails([.init("w", t, as: .float8E4M3)], .cannotConvert(tensor: "w", dtype: .float8E4M3, to: "Float"))
        assertWriteFails([.init("i", IndexTensor([1]), as: .float32)], .cannotConvert(tensor: "i", dtype: .float32, to: "Int"))
        assertWriteFails([.init("i", IndexTensor([0, 2]), as: .bool)], .valueOutOfRange(tensor: "i", value: "2", dtype: .bool))
        assertWriteFails([.init("i", IndexTensor([-1]), as: .uint32)], .valueOutOfRange(tensor: "i", value: "-1", dtype: .uint32))
        assertWriteFails([.init("i", IndexTensor([128]), as: .int8)], .valueOutOfRange(tensor: "i", value: "128", dtype: .int8))
    }

    func testErrorMessagesNameTheProblem() {
        let cases: [(SafeTensorsError, [String])] = [
            (.byteCountMismatch(tensor: "layer.0.weight", dtype: .bfloat16, shape: [3, 4], expected: 24, actual: 20),
             ["layer.0.weight", "BF16", "[3, 4]", "24", "20"]),
            (.gapInData(offset: 8, length: 4, before: "b"), ["8..<12", "\"b\""]),
            (.unknownDType(tensor: "w", dtype: "F31"), ["\"w\"", "\"F31\""]),
            (.headerTooLarge(declared: 1 << 40, limit: 100_000_000), ["1099511627776", "100000000"]),
            (.duplicateName("a\nb"), ["\"a\\u{a}b\""]),
        ]
        for (error, fragments) in cases {
            for fragment in fragments { XCTAssertTrue(error.description.contains(fragment), "\(error.description) lacks \(fragment)") }
        }
    }
}
