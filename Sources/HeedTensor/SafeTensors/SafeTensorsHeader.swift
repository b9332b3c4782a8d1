// Parsing and validating a safetensors header.
//
// The rules follow the reference implementation (huggingface/safetensors,
// `safetensors/src/tensor.rs`, `SafeTensors::read_metadata` and
// `Metadata::validate`, read at commit 24b0b28):
//   - an 8-byte little-endian u64 N, at most 100,000,000;
//   - N bytes of UTF-8 JSON (whitespace allowed before and after the object);
//   - an object whose `__metadata__` member, if present and not null, maps
//     strings to strings, and whose other members are
//     `{"dtype": String, "shape": [UInt], "data_offsets": [UInt, UInt]}`
//     (other fields ignored, as serde does);
//   - sorted by data_offsets, the tensors tile the data buffer exactly: the
//     first starts at 0, each starts where the previous ends, and the last
//     ends at the end of the file. No holes, no overlaps, no trailing bytes;
//   - each tensor's byte length is element count × bit size / 8, computed
//     with overflow checks, and must be a whole number of bytes.
// Where Heed is stricter than the reference, on purpose:
//   - a tensor name given twice is an error (serde keeps the last entry
//     silently, and the bytes of the first become a hole or an overlap);
//   - the element count is multiplied out in Int, in shape order, and must
//     not overflow (the reference uses usize, so e.g. [2, 2^63 - 1, 0] passes
//     there); a dimension above Int.max is an error even when another is 0.
//     Heed's shapes are [Int] and `Shape.count` multiplies in the same order,
//     so every accepted shape is safe to use;
//   - metadata keys that Swift's String == equates (canonically equivalent
//     spellings) are duplicates, since `metadata` is a [String: String].
// Tensor names are compared byte for byte, as in the reference.
// SafeTensorsFuzzTests checks, on 3,000 corrupted files, that Heed accepts
// exactly the files the official library accepts, apart from these cases.

/// The description of one tensor in a validated safetensors header.
public struct SafeTensorInfo: Sendable, Equatable, CustomStringConvertible {
    /// The tensor's name in the header.
    public let name: String
    /// The element type stored in the file.
    public let dtype: DType
    /// The dimensions, outermost first (`[]` for a scalar).
    public let shape: [Int]
    /// The tensor's bytes, as offsets into the data buffer (after the header).
    public let dataOffsets: Range<Int>

    /// Number of elements (1 for a scalar, 0 when a dimension is 0).
    public var elementCount: Int { shape.reduce(1, *) }   // validated not to overflow

    public var description: String { "\(name): \(dtype) \(shape) @ \(dataOffsets)" }
}

/// A parsed and fully validated header.
struct SafeTensorsHeader: Sendable {
    /// The `__metadata__` strings (empty when absent or null).
    var metadata: [String: String] = [:]
    /// The tensors in header order.
    var tensors: [SafeTensorInfo] = []
    /// Tensor position by name, compared byte for byte.
    var index: [JSONString: Int] = [:]
    /// Offset of the data buffer from the start of the file (8 + N).
    var dataStart = 0

    /// The reference implementation's limit on N.
    static let maximumHeaderSize = 100_000_000

    /// Parses and validates the framing and header of a whole file.
    init(file bytes: UnsafeRawBufferPointer) throws(SafeTensorsError) {
        guard bytes.count >= 8 else { throw .fileTooShort(byteCount: bytes.count) }
        let declared = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard declared <= UInt64(SafeTensorsHeader.maximumHeaderSize) else {
            throw .headerTooLarge(declared: declared, limit: SafeTensorsHeader.maximumHeaderSize)
        }
        let headerSize = Int(declared)
        guard headerSize <= bytes.count - 8 else { throw .headerPastEndOfFile(declared: declared, fileSize: bytes.count) }
        dataStart = 8 + headerSize
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart]).assumingMemoryBound(to: UInt8.self)
        if let bad = firstInvalidUTF8Offset(headerBytes) { throw .headerNotUTF8(byteOffset: bad) }
        let json = try JSONParser.parse(headerBytes)
        guard case .object(let members) = json else { throw .headerNotObject(found: json.summary) }
        try readEntries(members, dataSize: bytes.count - dataStart)
        try checkTiling(dataSize: bytes.count - dataStart)
    }

    // MARK: Entries

    private mutating func readEntries(_ members: [JSONMember], dataSize: Int) throws(SafeTensorsError) {
        let metadataKey = JSONString(bytes: Array("__metadata__".utf8))
        var sawMetadata = false
        for member in members {
            if member.key == metadataKey {
                if sawMetadata { throw .invalidMetadata(reason: "appears twice") }
                sawMetadata = true
                metadata = try SafeTensorsHeader.readMetadata(member.value)
                continue
            }
            let name = member.key.string
            if index[member.key] != nil { throw .duplicateName(name) }
            index[member.key] = tensors.count
            tensors.append(try SafeTensorsHeader.readTensor(name: name, member.value, dataSize: dataSize))
        }
    }

    private static func readMetadata(_ value: JSONValue) throws(SafeTensorsError) -> [String: String] {
        switch value {
        case .null:
            return [:]
        case .object(let members):
            var result: [String: String] = [:]
            for member in members {
                let key = member.key.string
                guard case .string(let text) = member.value else {
                    throw .invalidMetadata(reason: "value for key \(SafeTensorsError.quote(key)) is \(member.value.summary), not a string")
                }
                if result[key] != nil { throw .invalidMetadata(reason: "has the key \(SafeTensorsError.quote(key)) twice") }
                result[key] = text.string
            }
            return result
        default:
            throw .invalidMetadata(reason: "is \(value.summary), not an object of strings")
        }
    }

    private static func readTensor(name: String, _ value: JSONValue, dataSize: Int) throws(SafeTensorsError) -> SafeTensorInfo {
        guard case .object(let members) = value else {
            throw .invalidEntry(tensor: name, reason: "entry is \(value.summary), not an object")
        }
        var fields: [String: JSONValue] = [:]
        for member in members {
            let key = member.key.string
            guard key == "dtype" || key == "shape" || key == "data_offsets" else { continue }   // serde ignores unknown fields
            if fields[key] != nil { throw .invalidEntry(tensor: name, reason: "field \"\(key)\" appears twice") }
            fields[key] = member.value
        }

        // dtype
        guard let dtypeValue = fields["dtype"] else { throw .invalidEntry(tensor: name, reason: "missing field \"dtype\"") }
        guard case .string(let dtypeString) = dtypeValue else {
            throw .invalidEntry(tensor: name, reason: "dtype is \(dtypeValue.summary), not a string")
        }
        guard let dtype = DType(rawValue: dtypeString.string) else {
            throw .unknownDType(tensor: name, dtype: dtypeString.string)
        }

        // shape
        guard let shapeValue = fields["shape"] else { throw .invalidEntry(tensor: name, reason: "missing field \"shape\"") }
        guard case .array(let dimensions) = shapeValue else {
            throw .invalidShape(tensor: name, reason: "shape is \(shapeValue.summary), not an array")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dimensions.count)
        for (axis, dimension) in dimensions.enumerated() {
            guard case .number(let number) = dimension else {
                throw .invalidShape(tensor: name, reason: "dimension \(axis) is \(dimension.summary), not an integer")
            }
            if let problem = number.problemAsCount { throw .invalidShape(tensor: name, reason: "dimension \(axis): \(problem)") }
            shape.append(number.magnitude ?? 0)
        }

        // data_offsets
        guard let offsetsValue = fields["data_offsets"] else {
            throw .invalidEntry(tensor: name, reason: "missing field \"data_offsets\"")
        }
        guard case .array(let offsetValues) = offsetsValue, offsetValues.count == 2 else {
            throw .invalidOffsets(tensor: name, reason: "data_offsets is \(offsetsValue.summary), not an array of two integers")
        }
        var offsets: [Int] = []
        for offsetValue in offsetValues {
            guard case .number(let number) = offsetValue else {
                throw .invalidOffsets(tensor: name, reason: "\(offsetValue.summary) is not an integer")
            }
            if let problem = number.problemAsCount { throw .invalidOffsets(tensor: name, reason: problem) }
            offsets.append(number.magnitude ?? 0)
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else { throw .reversedOffsets(tensor: name, begin: begin, end: end) }
        guard end <= dataSize else { throw .offsetsPastEnd(tensor: name, end: end, dataSize: dataSize) }

        // size: elements × bits / 8, in the reference's order of overflow checks
        var elements = 1
        for dimension in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            if overflow { throw .sizeOverflow(tensor: name) }
            elements = product
        }
        let (bits, overflow) = elements.multipliedReportingOverflow(by: dtype.bitSize)
        if overflow { throw .sizeOverflow(tensor: name) }
        guard bits % 8 == 0 else { throw .misalignedSize(tensor: name, bits: bits) }
        guard bits / 8 == end - begin else {
            throw .byteCountMismatch(tensor: name, dtype: dtype, shape: shape, expected: bits / 8, actual: end - begin)
        }
        return SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    // MARK: Layout

    /// Sorted by offsets, the tensors must cover `0..<dataSize` exactly once.
    private func checkTiling(dataSize: Int) throws(SafeTensorsError) {
        let order = tensors.indices.sorted {
            let (a, b) = (tensors[$0].dataOffsets, tensors[$1].dataOffsets)
            return (a.lowerBound, a.upperBound, $0) < (b.lowerBound, b.upperBound, $1)   // ties: header order
        }
        var covered = 0
        var previous: Int?
        for i in order {
            let range = tensors[i].dataOffsets
            if range.lowerBound > covered {
                throw .gapInData(offset: covered, length: range.lowerBound - covered, before: tensors[i].name)
            }
            if range.lowerBound < covered, let previous {
                throw .overlappingTensors(tensors[previous].name, tensors[i].name)
            }
            covered = range.upperBound
            previous = i
        }
        if covered < dataSize { throw .trailingBytes(offset: covered, count: dataSize - covered) }
    }
}
