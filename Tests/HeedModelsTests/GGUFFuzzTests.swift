import Foundation
import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedModels

/// Corrupts valid GGUF files in many ways and checks that every result either
/// opens with every tensor readable or throws a ``GGUFError`` — never crashes,
/// never hangs, never allocates without bound.
final class GGUFFuzzTests: XCTestCase {
    // MARK: Seeds

    /// Valid files of several shapes: the two made by the reference writer,
    /// and files this test's writer makes with every value type, nested
    /// arrays, near-duplicate keys and names, a 63-byte name, version 2, no
    /// tensors, and a 64-byte alignment.
    func seedFiles() throws -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        for name in ["reference.gguf", "aligned64.gguf"] {
            seeds.append([UInt8](try Data(contentsOf: modelFixtures().appendingPathComponent(name))))
        }
        var writer = GGUFTestWriter()
        writer.add("k.a", .uint8(7))
        writer.add("k.b", .int8(-7))
        writer.add("k.c", .uint16(65535))
        writer.add("k.d", .int16(-2))
        writer.add("k.e", .uint32(32))
        writer.add("k.f", .int32(1))
        writer.add("k.g", .float32(0.5))
        writer.add("k.h", .bool(false))
        writer.add("k.i", .string("é🙂"))
        writer.add("k.j", .uint64(3))
        writer.add("k.k", .int64(-3))
        writer.add("k.l", .float64(.pi))
        writer.add("k.m", .array(.string(["a", "bc", ""])))
        writer.add("k.n", .array(.array([.bool([true, false]), .int16([1, -1]), .array([.float64([1])])])))
        writer.add("k.o", .array(.uint8([1, 2, 3, 4])))
        writer.addTensor("t.a", dimensions: [32, 2], type: .q4_0, data: (0..<36).map { UInt8(truncatingIfNeeded: $0 &* 37) })
        writer.addTensor("t.b", dimensions: [32], type: .q4_1, data: (0..<20).map { UInt8(truncatingIfNeeded: $0 &* 11 &+ 60) })
        writer.addTensor(String(repeating: "n", count: 63), dimensions: [2, 1, 1, 2], type: .f16, data: [0, 60, 0, 188, 1, 0, 255, 123])
        writer.addTensor("t.c", dimensions: [4], type: .bf16, data: [0, 63, 128, 191, 128, 127, 1, 0])
        seeds.append(writer.bytes())

        var small = GGUFTestWriter()
        small.version = 2
        small.add("general.alignment", .uint32(64))
        small.alignment = 64
        small.add("x", .string("y"))
        small.addTensor("w", dimensions: [32, 1], type: .q8_0, data: (0..<34).map { UInt8($0) })
        small.addTensor("v", dimensions: [2], type: .f32, data: [0, 0, 128, 63, 0, 0, 0, 192])
        seeds.append(small.bytes())

        var metadataOnly = GGUFTestWriter()
        metadataOnly.add("only", .array(.int64([1, 2, 3])))
        metadataOnly.add("only2", .bool(true))
        seeds.append(metadataOnly.bytes())

        for seed in seeds { _ = try GGUFFile(data: Data(seed)) }   // all valid
        return seeds
    }

    /// (offset, width) of every numeric field of a valid file: counts,
    /// lengths, type codes, scalar values, dimensions and offsets. Trusts
    /// the file (only seeds are walked).
    func numericFields(_ bytes: [UInt8]) -> [(offset: Int, width: Int)] {
        var fields: [(Int, Int)] = [(4, 4), (8, 8), (16, 8)]
        var position = 24
        func u32() -> UInt32 { defer { position += 4 }; return bytes[position..<(position + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        func u64() -> UInt64 { defer { position += 8 }; return bytes[position..<(position + 8)].reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        func string() { fields.append((position, 8)); position += Int(u64()) }
        func value(_ type: UInt32) {
            switch type {
            case 8: string()
            case 9:
                fields.append((position, 4)); let element = u32()
                fields.append((position, 8)); let count = u64()
                for _ in 0..<count { value(element) }
            default:
                let width = GGUFValueType(rawValue: type)!.fixedSize!
                fields.append((position, width))
                position += width
            }
        }
        let tensorCount = bytes[8..<16].reversed().reduce(0) { $0 << 8 | Int($1) }
        let entryCount = bytes[16..<24].reversed().reduce(0) { $0 << 8 | Int($1) }
        for _ in 0..<entryCount {
            string()
            fields.append((position, 4))
            value(u32())
        }
        for _ in 0..<tensorCount {
            string()
            fields.append((position, 4))
            let dimensions = u32()
            for _ in 0..<dimensions { fields.append((position, 8)); position += 8 }
            fields.append((position, 4)); position += 4
            fields.append((position, 8)); position += 8
        }
        return fields
    }

    // MARK: Mutations

    /// Returns one corrupted variant of `seed`: one to three stacked edits.
    func mutate(_ seed: [UInt8], fields: [(offset: Int, width: Int)], _ generator: inout RandomGenerator) -> [UInt8] {
        var bytes = seed
        for _ in 0...generator.nextInt(below: 3) {
            let field = fields[generator.nextInt(below: fields.count)]
            let fieldValid = field.offset + field.width <= bytes.count
            switch generator.nextInt(below: 12) {
            case 0:       // flip 1–8 bits anywhere
                for _ in 0...generator.nextInt(below: 8) where !bytes.isEmpty {
                    bytes[generator.nextInt(below: bytes.count)] ^= UInt8(1) << generator.nextInt(below: 8)
                }
            case 1:       // overwrite 1–4 bytes anywhere
                for _ in 0...generator.nextInt(below: 4) where !bytes.isEmpty {
                    bytes[generator.nextInt(below: bytes.count)] = UInt8(truncatingIfNeeded: generator.nextWord())
                }
            case 2:       // truncate
                bytes = Array(bytes.prefix(generator.nextInt(below: bytes.count + 1)))
            case 3:       // append 1–64 random bytes
                for _ in 0...generator.nextInt(below: 64) { bytes.append(UInt8(truncatingIfNeeded: generator.nextWord())) }
            case 4, 5:    // set a numeric field to an interesting value
                guard fieldValid else { break }
                let current = read(bytes, field)
                let interesting: [UInt64] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 31, 32, 33, 63, 64, 65, 255, 256,
                                             0x0300_0000, 0xFFFF_FFFF, 1 << 32, 1 << 40, 1 << 62, UInt64(Int64.max), .max, .max - 31,
                                             current &+ 1, current &- 1, current &+ 32, current &- 32, current &* 2,
                                             current &+ UInt64(generator.nextInt(below: 9)) &- 4,
                                             UInt64(generator.nextWord()) << 32 | UInt64(generator.nextWord())]
                write(&bytes, field, interesting[generator.nextInt(below: interesting.count)])
            case 6:       // copy one numeric field's value into another
                let other = fields[generator.nextInt(below: fields.count)]
                guard fieldValid, other.offset + other.width <= bytes.count else { break }
                write(&bytes, field, read(bytes, other))
            case 7:       // set a type code to any small value
                guard fieldValid, field.width == 4 else { break }
                write(&bytes, field, UInt64(generator.nextInt(below: 46)))
            case 8:       // insert 1–16 random bytes anywhere
                let at = generator.nextInt(below: bytes.count + 1)
                bytes.insert(contentsOf: (0...generator.nextInt(below: 16)).map { _ in UInt8(truncatingIfNeeded: generator.nextWord()) }, at: at)
            case 9:       // delete a span
                guard !bytes.isEmpty else { break }
                let start = generator.nextInt(below: bytes.count)
                bytes.removeSubrange(start..<Swift.min(bytes.count, start + 1 + generator.nextInt(below: 40)))
            case 10:      // duplicate a span elsewhere (repeats keys, names, records)
                guard !bytes.isEmpty else { break }
                let start = generator.nextInt(below: bytes.count)
                let span = Array(bytes[start..<Swift.min(bytes.count, start + 1 + generator.nextInt(below: 120))])
                bytes.insert(contentsOf: span, at: generator.nextInt(below: bytes.count + 1))
            default:      // plant bytes that break UTF-8 just after a length field
                guard fieldValid, field.width == 8, field.offset + 9 < bytes.count else { break }
                let planted: [[UInt8]] = [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]]
                let patch = planted[generator.nextInt(below: planted.count)]
                for (i, byte) in patch.enumerated() where field.offset + 8 + i < bytes.count { bytes[field.offset + 8 + i] = byte }
            }
        }
        return bytes
    }

    func read(_ bytes: [UInt8], _ field: (offset: Int, width: Int)) -> UInt64 {
        bytes[field.offset..<(field.offset + field.width)].reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    func write(_ bytes: inout [UInt8], _ field: (offset: Int, width: Int), _ value: UInt64) {
        for i in 0..<field.width { bytes[field.offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    // MARK: The property

    enum Outcome: Equatable {
        case loaded
        case rejected(String)
    }

    /// Opens `bytes` and reads every tensor in every way its type allows.
    func openAndReadEverything(_ bytes: [UInt8]) -> Outcome {
        do {
            let file = try GGUFFile(data: Data(bytes))
            XCTAssertEqual(file.metadataKeys.count, file.metadata.count)
            for key in file.metadataKeys { XCTAssertFalse(try file.value(key).description.isEmpty) }
            for info in file.tensorInfos {
                XCTAssertEqual(try file.rawBytes(info.name).count, info.byteCount)
                XCTAssertEqual(try file.info(info.name), info)
                XCTAssertLessThanOrEqual(Int(info.offset) + info.byteCount, file.dataSize)
                if info.type.canDequantize {
                    let tensor = try file.tensor(info.name)
                    XCTAssertEqual(tensor.shape, info.shape)
                    if info.rowCount > 0 {
                        let row = try file.rows(info.name, (info.rowCount - 1)..<info.rowCount)
                        XCTAssertEqual(row.scalars.map(\.bitPattern), tensor.scalars.suffix(info.rowLength).map(\.bitPattern))
                    }
                }
            }
            return .loaded
        } catch {   // typed: GGUFError is the only error these calls throw
            XCTAssertTrue(error.description.hasPrefix("gguf: "))
            return .rejected(Mirror(reflecting: error).children.first?.label ?? "\(error)")
        }
    }

    func testCorruptedFilesLoadFullyOrThrowTypedErrors() throws {
        let seeds = try seedFiles()
        let fields = seeds.map(numericFields)
        var generator = RandomGenerator(seed: 0x6_6_0F)
        var loaded = 0
        var rejections: [String: Int] = [:]
        let variants = 12_000
        for i in 0..<variants {
            let variant = mutate(seeds[i % seeds.count], fields: fields[i % seeds.count], &generator)
            switch openAndReadEverything(variant) {
            case .loaded: loaded += 1
            case .rejected(let kind): rejections[kind, default: 0] += 1
            }
        }
        let rejected = rejections.values.reduce(0, +)
        XCTAssertEqual(loaded + rejected, variants)
        // The corpus must exercise both outcomes and most of the validation.
        XCTAssertGreaterThan(loaded, variants / 50, "too few variants survive: \(rejections)")
        XCTAssertGreaterThan(rejected, variants / 2)
        XCTAssertGreaterThanOrEqual(rejections.count, 17, "error kinds seen: \(rejections.sorted { $0.key < $1.key })")
        print("gguf fuzz: \(loaded) loaded, \(rejected) rejected: \(rejections.sorted { $0.key < $1.key })")
    }
}
