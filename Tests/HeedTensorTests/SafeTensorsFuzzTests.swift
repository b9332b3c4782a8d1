import Foundation
import XCTest
import HeedTestSupport
@testable import HeedTensor

/// Corrupts valid safetensors files in many ways and checks that every result
/// either opens with every tensor readable or throws a `SafeTensorsError` —
/// never crashes — and, where the official library is installed, that Heed
/// accepts exactly the files the official library accepts.
final class SafeTensorsFuzzTests: XCTestCase {
    // MARK: Seeds

    /// Valid files of several shapes: the official library's fixture, a file
    /// Heed wrote, hand-made headers with unusual but legal layouts.
    func seedFiles() throws -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        seeds.append([UInt8](try Data(contentsOf: fixturesDirectory.appendingPathComponent("reference.safetensors"))))
        let mixed = try SafeTensors.serialize([
            .init("w.f32", Tensor.randomNormal([3, 4], seed: 11)), .init("w.f16", Tensor.randomNormal([5], seed: 12), as: .float16),
            .init("w.bf16", Tensor.randomNormal([2, 2], seed: 13), as: .bfloat16), .init("w.f64", Tensor([1, -2], shape: [2]), as: .float64),
            .init("ids", IndexTensor([3, -1, 7]), as: .int64), .init("one", IndexTensor([42], shape: []), as: .int32),
            .init("mask", IndexTensor([1, 0, 1, 1]), as: .bool), .init("none", IndexTensor([], shape: [0]), as: .uint8),
        ], metadata: ["format": "pt", "note": "fuzz seed"])
        seeds.append([UInt8](mixed))
        let handMade: [(String, [UInt8])] = [
            (#"  {"b":{"data_offsets":[2,6],"shape":[4],"dtype":"F8_E4M3"},"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]},"#
                + #""c":{"dtype":"C64","shape":[1,1],"data_offsets":[6,14]},"d":{"dtype":"F4","shape":[2],"data_offsets":[14,15]},"#
                + #""e":{"dtype":"U64","shape":[1],"data_offsets":[15,23]},"__metadata__":{"k":"v\u00e9"}}  "#,
             [0x80, 0x3F, 1, 2, 0x7F, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x21, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            (#"{"x":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"y":{"dtype":"I16","shape":[2,0,3],"data_offsets":[4,4]}}"#, [0, 0, 0x80, 0x7F]),
            (#"{"__metadata__":{"a":"1","b":"2"}}"#, []),
        ]
        for (header, data) in handMade { seeds.append([UInt8](safetensorsBytes(header, data: data))) }
        for seed in seeds { _ = try SafeTensorsFile(data: Data(seed)) }   // all valid
        return seeds
    }

    // MARK: Mutations

    /// Returns one corrupted variant of `seed`: one to three stacked edits.
    func mutate(_ seed: [UInt8], _ generator: inout RandomGenerator) -> [UInt8] {
        var bytes = seed
        for _ in 0...generator.nextInt(below: 3) {
            switch generator.nextInt(below: 12) {
            case 0:       // flip 1–8 bits anywhere
                for _ in 0...generator.nextInt(below: 8) where !bytes.isEmpty {
                    bytes[generator.nextInt(below: bytes.count)] ^= UInt8(1) << generator.nextInt(below: 8)
                }
            case 1:       // overwrite 1–4 bytes anywhere
                for _ in 0...generator.nextInt(below: 4) where !bytes.isEmpty {
                    bytes[generator.nextInt(below: bytes.count)] = UInt8(truncatingIfNeeded: generator.nextWord())
                }
            case 2:       // overwrite a byte inside the header with a JSON-significant one
                let header = headerRange(bytes)
                if !header.isEmpty {
                    let choices = Array("{}[],:\"\\ 0123456789-.eE".utf8) + [0, 0x80, 0xFF]
                    bytes[header.lowerBound + generator.nextInt(below: header.count)] = choices[generator.nextInt(below: choices.count)]
                }
            case 3:       // truncate
                bytes = Array(bytes.prefix(generator.nextInt(below: bytes.count + 1)))
            case 4:       // append 1–16 random bytes
                for _ in 0...generator.nextInt(below: 16) { bytes.append(UInt8(truncatingIfNeeded: generator.nextWord())) }
            case 5:       // edit the length prefix
                guard bytes.count >= 8 else { break }
                var length = bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                switch generator.nextInt(below: 4) {
                case 0: length = length &+ UInt64(generator.nextInt(below: 33)) &- 16
                case 1: length = UInt64(generator.nextWord()) << 32 | UInt64(generator.nextWord())
                case 2: length = [0, 1, 7, 8, 100_000_000, 100_000_001, UInt64(Int.max), .max][generator.nextInt(below: 8)]
                default: length ^= UInt64(0xFF) << (8 * UInt64(generator.nextInt(below: 8)))
                }
                for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: length >> (8 * UInt64(i))) }
            case 6:       // replace a number in the header
                bytes = editHeader(bytes, &generator) { text, generator in
                    let numbers = tokens(in: text, matching: { $0.isNumber || $0 == "-" })
                    guard !numbers.isEmpty else { return text }
                    let range = numbers[generator.nextInt(below: numbers.count)]
                    let original = Int(text[range]) ?? 0
                    let replacements = ["0", "-1", "-0", "1e3", "1.5", "18446744073709551615", "9223372036854775807",
                                        "4611686018427387904", "4294967296", String(original &+ 1), String(original &- 1),
                                        String(original &* 2), String(generator.nextInt(below: 1000))]
                    return text.replacingCharacters(in: range, with: replacements[generator.nextInt(below: replacements.count)])
                }
            case 7:       // replace a string (dtype, name, key) in the header
                bytes = editHeader(bytes, &generator) { text, generator in
                    let strings = quotedStrings(in: text)
                    guard !strings.isEmpty else { return text }
                    let range = strings[generator.nextInt(below: strings.count)]
                    let names = DType.allCases.map(\.rawValue) + ["F31", "", "f32", "BF17", "dtype", "shape", "data_offsets",
                                                                  "__metadata__", "\\u0041", "\\ud800", "a\\\"b"]
                    return text.replacingCharacters(in: range, with: names[generator.nextInt(below: names.count)])
                }
            case 8:       // swap two numbers in the header
                bytes = editHeader(bytes, &generator) { text, generator in
                    let numbers = tokens(in: text, matching: { $0.isNumber || $0 == "-" })
                    guard numbers.count >= 2 else { return text }
                    let (a, b) = (numbers[generator.nextInt(below: numbers.count)], numbers[generator.nextInt(below: numbers.count)])
                    guard a != b else { return text }
                    let (first, second) = a.lowerBound < b.lowerBound ? (a, b) : (b, a)
                    var result = text
                    let (firstText, secondText) = (String(text[first]), String(text[second]))
                    result.replaceSubrange(second, with: firstText)
                    result.replaceSubrange(first, with: secondText)
                    return result
                }
            case 9:       // delete a span of the header (a key, a bracket, part of a value)
                bytes = editHeader(bytes, &generator) { text, generator in
                    var utf8 = Array(text.utf8)
                    guard !utf8.isEmpty else { return text }
                    let start = generator.nextInt(below: utf8.count)
                    utf8.removeSubrange(start..<Swift.min(utf8.count, start + 1 + generator.nextInt(below: 24)))
                    return String(decoding: utf8, as: UTF8.self)
                }
            case 10:      // move, swap or collapse data_offsets pairs (gaps, overlaps, reordering)
                bytes = editHeader(bytes, &generator) { text, generator in
                    let pairs = offsetPairs(in: text)
                    guard !pairs.isEmpty else { return text }
                    let (range, begin, end) = pairs[generator.nextInt(below: pairs.count)]
                    let replacement: String
                    switch generator.nextInt(below: 4) {
                    case 0:
                        let shift = generator.nextInt(below: 17) - 8
                        replacement = "[\(begin &+ shift),\(end &+ shift)]"
                    case 1:
                        let other = pairs[generator.nextInt(below: pairs.count)]
                        replacement = "[\(other.1),\(other.2)]"
                    case 2:
                        replacement = "[\(begin),\(begin)]"
                    default:
                        replacement = "[\(end),\(end &+ (end &- begin))]"
                    }
                    var result = text
                    if case 1 = generator.nextInt(below: 2), pairs.count >= 2 {
                        // swap this pair with another one
                        let other = pairs[generator.nextInt(below: pairs.count)]
                        guard other.0 != range else { return text }
                        let (first, second) = range.lowerBound < other.0.lowerBound ? (range, other.0) : (other.0, range)
                        let (firstText, secondText) = (String(text[first]), String(text[second]))
                        result.replaceSubrange(second, with: firstText)
                        result.replaceSubrange(first, with: secondText)
                        return result
                    }
                    result.replaceSubrange(range, with: replacement)
                    return result
                }
            default:      // duplicate a span of the header elsewhere in it
                bytes = editHeader(bytes, &generator) { text, generator in
                    var utf8 = Array(text.utf8)
                    guard !utf8.isEmpty else { return text }
                    let start = generator.nextInt(below: utf8.count)
                    let span = Array(utf8[start..<Swift.min(utf8.count, start + 1 + generator.nextInt(below: 80))])
                    utf8.insert(contentsOf: span, at: generator.nextInt(below: utf8.count + 1))
                    return String(decoding: utf8, as: UTF8.self)
                }
            }
        }
        return bytes
    }

    /// The header bytes as the length prefix declares them, clipped to the file.
    func headerRange(_ bytes: [UInt8]) -> Range<Int> {
        guard bytes.count >= 8 else { return 0..<0 }
        let length = bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return 8..<(8 + Int(Swift.min(length, UInt64(bytes.count - 8))))
    }

    /// Applies a text edit to the header; usually rewrites the length prefix
    /// to match (so parsing reaches the entries), sometimes leaves it stale.
    func editHeader(_ bytes: [UInt8], _ generator: inout RandomGenerator,
                    _ edit: (String, inout RandomGenerator) -> String) -> [UInt8] {
        let range = headerRange(bytes)
        guard !range.isEmpty else { return bytes }
        let text = String(decoding: bytes[range], as: UTF8.self)
        let edited = Array(edit(text, &generator).utf8)
        let keepPrefix = generator.nextInt(below: 5) == 0
        var length = UInt64(keepPrefix ? range.count : edited.count)
        var result = withUnsafeBytes(of: &length) { [UInt8]($0) }   // little-endian host (x86-64, arm64)
        result += edited
        result += bytes[range.upperBound...]
        return result
    }

    // MARK: The property

    enum Outcome: Equatable {
        case loaded
        case rejected(String)
    }

    /// Opens `bytes` and reads every tensor in every way its dtype allows.
    func openAndReadEverything(_ bytes: [UInt8]) -> Outcome {
        do {
            let file = try SafeTensorsFile(data: Data(bytes))
            for info in file.tensorInfos {
                XCTAssertEqual(try file.rawBytes(info.name).count, info.dataOffsets.count)
                XCTAssertEqual(try file.info(info.name), info)
                if info.dtype.canDecodeToFloat {
                    let tensor = try file.tensor(info.name)
                    XCTAssertEqual(tensor.shape, info.shape)
                    XCTAssertEqual(tensor.count, info.elementCount)
                }
                if info.dtype.isInteger {
                    do {
                        let indices = try file.indices(info.name)
                        XCTAssertEqual(indices.shape, info.shape)
                    } catch {
                        guard case .valueOutOfRange = error, info.dtype == .uint64 else {
                            XCTFail("indices(\(info.name)): \(error)")
                            continue
                        }
                    }
                }
            }
            return .loaded
        } catch {   // typed: SafeTensorsError is the only error these calls throw
            XCTAssertFalse(error.description.isEmpty)
            return .rejected(Mirror(reflecting: error).children.first?.label ?? "\(error)")
        }
    }

    func testCorruptedFilesLoadFullyOrThrowTypedErrors() throws {
        let seeds = try seedFiles()
        var generator = RandomGenerator(seed: 0x5AFE_7E45)
        var loaded = 0
        var rejections: [String: Int] = [:]
        let variants = 12_000
        for i in 0..<variants {
            let variant = mutate(seeds[i % seeds.count], &generator)
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
        XCTAssertGreaterThanOrEqual(rejections.count, 16, "error kinds seen: \(rejections.sorted { $0.key < $1.key })")
        print("fuzz: \(loaded) loaded, \(rejected) rejected: \(rejections.sorted { $0.key < $1.key })")
    }

    /// Heed and the official library agree on which corrupted files are valid.
    ///
    /// Deliberate differences, counted apart: a tensor name given twice (the
    /// official library keeps the last entry; Heed rejects the file), and a
    /// shape whose running product overflows `Int` or that has a dimension
    /// above `Int.max` while another dimension is 0 (the official library
    /// counts in `usize` and accepts it; Heed's shapes are `[Int]`).
    /// Everything else must agree.
    func testCorruptedFilesAcceptedExactlyWhenOfficialLibraryAccepts() throws {
        try requireReferenceLibrary()
        let seeds = try seedFiles()
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var generator = RandomGenerator(seed: 0xD1FF)
        // One corpus file of length-prefixed variants (u32 little-endian length, bytes).
        var heed: [String: Outcome] = [:]
        var corpus: [UInt8] = []
        let variants = 3_000
        for i in 0..<variants {
            let variant = mutate(seeds[i % seeds.count], &generator)
            heed[String(i)] = openAndReadEverything(variant)
            corpus += (0..<4).map { UInt8(truncatingIfNeeded: variant.count >> (8 * $0)) }
            corpus += variant
        }
        let corpusURL = directory.appendingPathComponent("corpus.bin")
        try Data(corpus).write(to: corpusURL)
        let script = """
        import sys
        from safetensors import deserialize
        corpus = open(sys.argv[1], "rb").read()
        position, index = 0, 0
        while position < len(corpus):
            length = int.from_bytes(corpus[position:position + 4], "little")
            variant = corpus[position + 4:position + 4 + length]
            position += 4 + length
            try:
                deserialize(variant)
                print(index, "ok")
            except Exception:
                print(index, "rejected")
            index += 1
        """
        let result = try XCTUnwrap(runPython(["-c", script, corpusURL.path]))
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = String(decoding: result.stdout, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.count, heed.count)
        var agreed = 0, accepted = 0
        var deliberate: [String: Int] = [:]
        var disagreements: [String] = []
        for line in lines {
            let parts = line.split(separator: " ")
            let name = String(parts[0])
            let officialAccepts = parts[1] == "ok"
            let heedAccepts = heed[name] == .loaded
            if officialAccepts { accepted += 1 }
            if officialAccepts == heedAccepts {
                agreed += 1
            } else if officialAccepts, case .rejected(let kind) = heed[name],
                      ["duplicateName", "sizeOverflow", "invalidShape"].contains(kind) {
                deliberate[kind, default: 0] += 1
            } else {
                disagreements.append("variant \(name): official \(officialAccepts ? "accepts" : "rejects"), Heed \(heed[name].map { "\($0)" } ?? "?")")
            }
        }
        XCTAssertEqual(disagreements, [])
        XCTAssertGreaterThan(accepted, 30, "the comparison needs accepted variants too")
        XCTAssertGreaterThan(agreed, variants * 97 / 100, "deliberate differences: \(deliberate)")
        print("differential fuzz: \(agreed) agree (\(accepted) accepted by the official library); deliberate differences \(deliberate)")
    }
}

/// Ranges of maximal runs of characters matching `predicate`.
private func tokens(in text: String, matching predicate: (Character) -> Bool) -> [Range<String.Index>] {
    var ranges: [Range<String.Index>] = []
    var start: String.Index?
    var index = text.startIndex
    while index < text.endIndex {
        if predicate(text[index]) {
            if start == nil { start = index }
        } else if let s = start {
            ranges.append(s..<index)
            start = nil
        }
        index = text.index(after: index)
    }
    if let s = start { ranges.append(s..<text.endIndex) }
    return ranges
}

/// Each `[begin,end]` array that follows `"data_offsets":`, with its numbers.
private func offsetPairs(in text: String) -> [(Range<String.Index>, Int, Int)] {
    var pairs: [(Range<String.Index>, Int, Int)] = []
    var searchStart = text.startIndex
    while let key = text.range(of: "\"data_offsets\":[", range: searchStart..<text.endIndex) {
        let open = text.index(before: key.upperBound)
        guard let close = text[open...].firstIndex(of: "]") else { break }
        let numbers = text[text.index(after: open)..<close].split(separator: ",").compactMap { Int($0) }
        if numbers.count == 2 { pairs.append((open..<text.index(after: close), numbers[0], numbers[1])) }
        searchStart = close
    }
    return pairs
}

/// Ranges of the contents of double-quoted strings (between the quotes).
private func quotedStrings(in text: String) -> [Range<String.Index>] {
    var ranges: [Range<String.Index>] = []
    var open: String.Index?
    var index = text.startIndex
    var escaped = false
    while index < text.endIndex {
        let character = text[index]
        if let o = open {
            if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" {
                ranges.append(text.index(after: o)..<index)
                open = nil
            }
        } else if character == "\"" {
            open = index
        }
        index = text.index(after: index)
    }
    return ranges
}
