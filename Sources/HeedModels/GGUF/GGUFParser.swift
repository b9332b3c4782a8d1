// Parsing and validating the header, metadata and tensor descriptions of a
// GGUF file.
//
// The layout (ggml's docs/gguf.md, and gguf.cpp `gguf_init_from_file_impl`):
//
//   magic "GGUF" · u32 version · u64 tensor count · u64 metadata count
//   metadata × count:  string key · u32 type · value
//       value: fixed-size scalar | string (u64 length, UTF-8 bytes)
//            | array (u32 element type, u64 count, elements; arrays nest)
//   tensor × count:    string name · u32 n_dims · u64 dims[n_dims]
//                      · u32 ggml type · u64 offset (from the data section)
//   zero padding to `general.alignment` (default 32), then the data section.
//
// Every read is bounds-checked against the bytes that remain, and every count
// is checked against the fewest bytes its items could occupy *before*
// anything is allocated, so no file can make the parser crash, loop for long
// or allocate more than a small multiple of the file's size.
//
// The rules, and where they come from:
//   - versions 2 and 3 (version 1 had 32-bit counts); a byte-swapped version
//     is reported as a big-endian file, as gguf.cpp does;
//   - strings are valid UTF-8 (the specification says UTF-8; gguf.cpp does not
//     check, Heed does); BOOL bytes are 0 or 1;
//   - keys are unique; tensor names are unique and shorter than 64 bytes
//     (GGML_MAX_NAME = 64 with the NUL); at most 4 dimensions;
//   - `general.alignment`, when present, is a UINT32 power of two;
//   - the innermost dimension is a whole number of blocks of the tensor's
//     type; the product of the non-zero dimensions and the byte size fit in
//     63 bits;
//   - offsets are multiples of the alignment, each tensor lies inside the
//     data section, and no two tensors share a byte. (gguf.cpp is stricter:
//     it wants the tensors packed in description order, each padded to the
//     alignment. The `gguf` Python reader is looser: it checks none of this.
//     Heed checks what reading safely needs.)
//   - arrays nest at most `GGUFFile.maximumNestingDepth` levels (the format
//     has no limit; recursion needs one).

/// The parsed and validated contents of a GGUF file, before the data section.
struct GGUFHeader {
    var version: UInt32 = 0
    var metadataKeys: [String] = []
    var metadata: [String: GGUFValue] = [:]
    var tensors: [GGUFTensorInfo] = []
    var tensorIndex: [String: Int] = [:]
    var alignment = GGUFFile.defaultAlignment
    var dataStart = 0
    var dataSize = 0

    init(file bytes: UnsafeRawBufferPointer) throws(GGUFError) {
        var cursor = ByteCursor(bytes: bytes)
        try readFixedHeader(&cursor)
        let tensorCount = try cursor.count(field: "tensor count", minimumItemSize: 24)
        let metadataCount = try cursor.count(field: "metadata count", minimumItemSize: 8 + 4 + 1)
        try readMetadata(&cursor, count: metadataCount)
        try readAlignment()
        try readTensorInfos(&cursor, count: tensorCount)
        try placeData(position: cursor.position, fileSize: bytes.count)
    }

    // MARK: Header

    private mutating func readFixedHeader(_ cursor: inout ByteCursor) throws(GGUFError) {
        let magic = try cursor.take(4, field: "magic")
        guard Array(magic) == Array("GGUF".utf8) else { throw .badMagic(Array(magic)) }
        version = try cursor.u32(field: "version")
        guard version == 2 || version == 3 else {
            if version.byteSwapped == 2 || version.byteSwapped == 3 { throw .bigEndianFile(version: version) }
            throw .unsupportedVersion(version)
        }
    }

    // MARK: Metadata

    private mutating func readMetadata(_ cursor: inout ByteCursor, count: Int) throws(GGUFError) {
        metadataKeys.reserveCapacity(count)
        for entry in 0..<count {
            let key = try cursor.string(field: "metadata entry \(entry) key")
            let field = "metadata \(GGUFError.quote(key))"
            let code = try cursor.u32(field: "\(field) type")
            guard let type = GGUFValueType(rawValue: code) else { throw .unknownValueType(field: field, code: code) }
            let value = try readValue(&cursor, type: type, field: field, key: key, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else { throw .duplicateKey(key) }
            metadataKeys.append(key)
        }
    }

    private func readValue(_ cursor: inout ByteCursor, type: GGUFValueType, field: String, key: String,
                           depth: Int) throws(GGUFError) -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try cursor.u8(field: field))
        case .int8: return .int8(Int8(bitPattern: try cursor.u8(field: field)))
        case .uint16: return .uint16(try cursor.u16(field: field))
        case .int16: return .int16(Int16(bitPattern: try cursor.u16(field: field)))
        case .uint32: return .uint32(try cursor.u32(field: field))
        case .int32: return .int32(Int32(bitPattern: try cursor.u32(field: field)))
        case .float32: return .float32(Float(bitPattern: try cursor.u32(field: field)))
        case .bool: return .bool(try cursor.bool(field: field))
        case .string: return .string(try cursor.string(field: field))
        case .uint64: return .uint64(try cursor.u64(field: field))
        case .int64: return .int64(Int64(bitPattern: try cursor.u64(field: field)))
        case .float64: return .float64(Double(bitPattern: try cursor.u64(field: field)))
        case .array: return .array(try readArray(&cursor, field: field, key: key, depth: depth + 1))
        }
    }

    private func readArray(_ cursor: inout ByteCursor, field: String, key: String,
                           depth: Int) throws(GGUFError) -> GGUFArray {
        guard depth <= GGUFFile.maximumNestingDepth else { throw .nestingTooDeep(key: key, limit: GGUFFile.maximumNestingDepth) }
        let code = try cursor.u32(field: "\(field) array element type")
        guard let type = GGUFValueType(rawValue: code) else { throw .unknownValueType(field: "\(field) array", code: code) }
        let count = try cursor.count(field: "\(field) array length", minimumItemSize: type.minimumSize)
        switch type {
        case .uint8: return .uint8(try cursor.fixedArray(count, field: field) { $0 })
        case .int8: return .int8(try cursor.fixedArray(count, field: field) { Int8(bitPattern: $0) })
        case .uint16: return .uint16(try cursor.fixedArray(count, field: field) { $0 })
        case .int16: return .int16(try cursor.fixedArray(count, field: field) { (v: UInt16) in Int16(bitPattern: v) })
        case .uint32: return .uint32(try cursor.fixedArray(count, field: field) { $0 })
        case .int32: return .int32(try cursor.fixedArray(count, field: field) { (v: UInt32) in Int32(bitPattern: v) })
        case .float32: return .float32(try cursor.fixedArray(count, field: field) { (v: UInt32) in Float(bitPattern: v) })
        case .uint64: return .uint64(try cursor.fixedArray(count, field: field) { $0 })
        case .int64: return .int64(try cursor.fixedArray(count, field: field) { (v: UInt64) in Int64(bitPattern: v) })
        case .float64: return .float64(try cursor.fixedArray(count, field: field) { (v: UInt64) in Double(bitPattern: v) })
        case .bool:
            var values: [Bool] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try cursor.bool(field: "\(field) element")) }
            return .bool(values)
        case .string:
            var values: [String] = []
            values.reserveCapacity(count)
            for index in 0..<count { values.append(try cursor.string(field: "\(field) element \(index)")) }
            return .string(values)
        case .array:
            var values: [GGUFArray] = []
            values.reserveCapacity(count)
            for index in 0..<count {
                values.append(try readArray(&cursor, field: "\(field) element \(index)", key: key, depth: depth + 1))
            }
            return .array(values)
        }
    }

    private mutating func readAlignment() throws(GGUFError) {
        guard let value = metadata[GGUFFile.alignmentKey] else { return }
        guard case .uint32(let alignment) = value, alignment != 0, alignment & (alignment - 1) == 0 else {
            throw .invalidAlignment(found: value.description)
        }
        self.alignment = Int(alignment)
    }

    // MARK: Tensor descriptions

    private mutating func readTensorInfos(_ cursor: inout ByteCursor, count: Int) throws(GGUFError) {
        tensors.reserveCapacity(count)
        for position in 0..<count {
            let name = try cursor.string(field: "tensor \(position) name")
            let field = "tensor \(position) (\(GGUFError.quote(name)))"
            guard name.utf8.count < 64 else { throw .tensorNameTooLong(name, byteCount: name.utf8.count) }
            let dimensionCount = try cursor.u32(field: "\(field) dimension count")
            guard dimensionCount <= 4 else { throw .tooManyDimensions(tensor: name, count: dimensionCount) }
            var raw: [UInt64] = []
            for axis in 0..<Int(dimensionCount) { raw.append(try cursor.u64(field: "\(field) dimension \(axis)")) }
            let code = try cursor.u32(field: "\(field) type")
            let offset = try cursor.u64(field: "\(field) offset")

            guard let type = GGMLType(rawValue: code) else { throw .unknownTensorType(tensor: name, code: code) }
            let dimensions = try GGUFHeader.checkedDimensions(raw, type: type, tensor: name)
            let innermost = dimensions.first ?? 1
            guard innermost % type.blockSize == 0 else {
                throw .partialBlock(tensor: name, type: type, innermost: innermost, blockSize: type.blockSize)
            }
            // Bytes: (elements / blockSize) · blockByteCount; up to 8 bytes an element (I64,
            // F64), so a count that fits can still give a byte size that does not.
            let elementCount = dimensions.reduce(1, *)
            let (byteCount, overflow) = (elementCount / type.blockSize).multipliedReportingOverflow(by: type.blockByteCount)
            guard !overflow else { throw .dimensionsOverflow(tensor: name, dimensions: raw) }
            guard offset % UInt64(alignment) == 0 else {
                throw .misalignedOffset(tensor: name, offset: offset, alignment: alignment)
            }
            let info = GGUFTensorInfo(name: name, dimensions: dimensions, type: type,
                                      offset: offset, byteCount: byteCount)
            guard tensorIndex.updateValue(tensors.count, forKey: name) == nil else { throw .duplicateTensor(name) }
            tensors.append(info)
        }
    }

    /// The dimensions as `Int`s, once each is at most `Int64.max` and the
    /// product of the non-zero ones fits (so every partial product does,
    /// whatever the order a caller multiplies in).
    static func checkedDimensions(_ raw: [UInt64], type: GGMLType, tensor: String) throws(GGUFError) -> [Int] {
        var product = 1
        var dimensions: [Int] = []
        for value in raw {
            guard let dimension = Int(exactly: value) else { throw .dimensionsOverflow(tensor: tensor, dimensions: raw) }
            if dimension != 0 {
                let (next, overflow) = product.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw .dimensionsOverflow(tensor: tensor, dimensions: raw) }
                product = next
            }
            dimensions.append(dimension)
        }
        return dimensions
    }

    // MARK: Data section

    private mutating func placeData(position: Int, fileSize: Int) throws(GGUFError) {
        // position ≤ fileSize ≤ Int.max / 2 in practice; alignment ≤ 2³¹: no overflow.
        let start = (position + alignment - 1) / alignment * alignment
        let hasBytes = tensors.contains { $0.byteCount > 0 }
        if start > fileSize {
            guard !hasBytes else { throw .dataSectionPastEnd(start: start, fileSize: fileSize) }
            dataStart = fileSize
            dataSize = 0
        } else {
            dataStart = start
            dataSize = fileSize - start
        }
        for tensor in tensors {
            let (end, overflow) = tensor.offset.addingReportingOverflow(UInt64(tensor.byteCount))
            guard !overflow, end <= UInt64(dataSize) else {
                throw .tensorPastEnd(tensor: tensor.name, offset: tensor.offset, byteCount: tensor.byteCount, dataSize: dataSize)
            }
        }
        // No two tensors share a byte: sorted by offset, each ends before the next begins.
        let placed = tensors.enumerated().filter { $0.element.byteCount > 0 }
            .sorted { ($0.element.offset, $0.offset) < ($1.element.offset, $1.offset) }.map(\.element)
        for (first, second) in zip(placed, placed.dropFirst())
        where first.offset + UInt64(first.byteCount) > second.offset {
            throw .overlappingTensors(first.name, second.name)
        }
    }
}

/// Little-endian reads from a byte buffer, each checked against the end.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    private(set) var position = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - position }

    /// The next `count` bytes, or `.truncated` when fewer remain.
    mutating func take(_ count: Int, field: String) throws(GGUFError) -> UnsafeRawBufferPointer {
        guard count <= remaining else {
            throw .truncated(field: field, offset: position, needed: UInt64(count), available: remaining)
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
    }

    mutating func u8(field: String) throws(GGUFError) -> UInt8 { try take(1, field: field)[0] }

    mutating func u16(field: String) throws(GGUFError) -> UInt16 {
        UInt16(littleEndian: try take(2, field: field).loadUnaligned(as: UInt16.self))
    }

    mutating func u32(field: String) throws(GGUFError) -> UInt32 {
        UInt32(littleEndian: try take(4, field: field).loadUnaligned(as: UInt32.self))
    }

    mutating func u64(field: String) throws(GGUFError) -> UInt64 {
        UInt64(littleEndian: try take(8, field: field).loadUnaligned(as: UInt64.self))
    }

    mutating func bool(field: String) throws(GGUFError) -> Bool {
        let at = position
        let byte = try u8(field: field)
        guard byte <= 1 else { throw .invalidBool(field: field, byte: byte, offset: at) }
        return byte == 1
    }

    /// A u64 count whose items need at least `minimumItemSize` bytes each:
    /// larger than what remains can hold is `.countTooLarge`.
    mutating func count(field: String, minimumItemSize: Int) throws(GGUFError) -> Int {
        let count = try u64(field: field)
        let limit = UInt64(remaining / minimumItemSize)
        guard count <= limit else { throw .countTooLarge(field: field, count: count, limit: limit) }
        return Int(count)
    }

    /// A u64 length, then that many bytes of UTF-8.
    mutating func string(field: String) throws(GGUFError) -> String {
        let lengthAt = position
        let length = try u64(field: "\(field) length")
        guard length <= UInt64(remaining) else {
            throw .truncated(field: field, offset: lengthAt + 8, needed: length, available: remaining)
        }
        let at = position
        let raw = try take(Int(length), field: field)
        guard let text = String(validating: raw.assumingMemoryBound(to: UInt8.self), as: UTF8.self) else {
            throw .invalidUTF8(field: field, offset: at)
        }
        return text
    }

    /// `count` fixed-size little-endian values (the count was already bounded).
    mutating func fixedArray<Raw: FixedWidthInteger, Value>(_ count: Int, field: String,
                                                             _ convert: (Raw) -> Value) throws(GGUFError) -> [Value] {
        let raw = try take(count * MemoryLayout<Raw>.size, field: "\(field) array data")
        return (0..<count).map { convert(Raw(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<Raw>.size, as: Raw.self))) }
    }
}
