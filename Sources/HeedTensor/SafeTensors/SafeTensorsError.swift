#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can be wrong with a safetensors file, or with a request to
/// read or write one. Every malformed input is reported as one of these cases;
/// none crashes.
///
/// Cases are listed in the order ``SafeTensorsFile`` checks them: framing
/// (length prefix, header bytes, JSON), then each header entry in the order it
/// appears, then the layout of the data buffer as a whole. Offsets in messages
/// are relative to the start of the data buffer, as in the header, unless
/// they say otherwise.
public enum SafeTensorsError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: Framing

    /// Fewer than the 8 bytes of the little-endian header-length prefix.
    case fileTooShort(byteCount: Int)
    /// The length prefix exceeds ``SafeTensors/maximumHeaderSize`` (100 MB, the
    /// reference implementation's limit).
    case headerTooLarge(declared: UInt64, limit: Int)
    /// The header would end past the end of the file.
    case headerPastEndOfFile(declared: UInt64, fileSize: Int)
    /// The header is not valid UTF-8; `byteOffset` counts from the header's first byte.
    case headerNotUTF8(byteOffset: Int)
    /// The header is not valid JSON (RFC 8259); `byteOffset` counts from the header's first byte.
    case invalidJSON(reason: String, byteOffset: Int)
    /// The header is valid JSON but not an object.
    case headerNotObject(found: String)

    // MARK: Header entries

    /// `__metadata__` is not an object of strings (or `null`), or appears twice.
    case invalidMetadata(reason: String)
    /// Two entries of the header have the same tensor name.
    case duplicateName(String)
    /// An entry is not an object, lacks `dtype`, `shape` or `data_offsets`, gives
    /// one of them twice, or gives `dtype` as a non-string.
    case invalidEntry(tensor: String, reason: String)
    /// `dtype` is a string the format does not define.
    case unknownDType(tensor: String, dtype: String)
    /// `shape` is not an array of non-negative integers.
    case invalidShape(tensor: String, reason: String)
    /// `data_offsets` is not an array of two non-negative integers.
    case invalidOffsets(tensor: String, reason: String)
    /// `data_offsets` has its end before its beginning.
    case reversedOffsets(tensor: String, begin: Int, end: Int)
    /// `data_offsets` reaches past the end of the data buffer.
    case offsetsPastEnd(tensor: String, end: Int, dataSize: Int)
    /// Element count × bit size overflows a 64-bit integer.
    case sizeOverflow(tensor: String)
    /// A sub-byte type (`F4`, `F6_*`) whose elements do not fill whole bytes.
    case misalignedSize(tensor: String, bits: Int)
    /// `shape` and `dtype` need `expected` bytes, `data_offsets` spans `actual`.
    case byteCountMismatch(tensor: String, dtype: DType, shape: [Int], expected: Int, actual: Int)

    // MARK: Data buffer layout

    /// Two tensors claim some of the same bytes.
    case overlappingTensors(String, String)
    /// Bytes `offset ..< offset + length` belong to no tensor (the format
    /// requires the tensors to tile the data buffer without holes).
    case gapInData(offset: Int, length: Int, before: String)
    /// The last `count` bytes of the data buffer, from `offset`, belong to no tensor.
    case trailingBytes(offset: Int, count: Int)

    // MARK: Access and writing

    /// No tensor of that name in the file.
    case tensorNotFound(String)
    /// The tensor's type cannot be converted to the requested Swift type
    /// (`"Float"`, `"Int"`) — or, when writing, from it.
    case cannotConvert(tensor: String, dtype: DType, to: String)
    /// An integer that does not fit: a `U64` above `Int.max` read as `Int`, or
    /// an index written in a type too narrow for it.
    case valueOutOfRange(tensor: String, value: String, dtype: DType)
    /// `__metadata__` cannot name a tensor.
    case reservedName(String)
    /// A file operation failed; `errno` is the C error number.
    case io(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case let .fileTooShort(byteCount):
            return "safetensors: file has \(byteCount) bytes, fewer than the 8-byte header-length prefix"
        case let .headerTooLarge(declared, limit):
            return "safetensors: header length \(declared) exceeds the limit of \(limit) bytes"
        case let .headerPastEndOfFile(declared, fileSize):
            return "safetensors: header of \(declared) bytes after the 8-byte prefix runs past the end of the \(fileSize)-byte file"
        case let .headerNotUTF8(byteOffset):
            return "safetensors: header is not valid UTF-8 (at header byte \(byteOffset))"
        case let .invalidJSON(reason, byteOffset):
            return "safetensors: header is not valid JSON at header byte \(byteOffset): \(reason)"
        case let .headerNotObject(found):
            return "safetensors: header is JSON \(found), not an object"
        case let .invalidMetadata(reason):
            return "safetensors: __metadata__ \(reason)"
        case let .duplicateName(name):
            return "safetensors: tensor \(SafeTensorsError.quote(name)) appears twice in the header"
        case let .invalidEntry(tensor, reason):
            return "safetensors: tensor \(SafeTensorsError.quote(tensor)): \(reason)"
        case let .unknownDType(tensor, dtype):
            return "safetensors: tensor \(SafeTensorsError.quote(tensor)) has unknown dtype \(SafeTensorsError.quote(dtype))"
        case let .invalidShape(tensor, reason):
            return "safetensors: tensor \(SafeTensorsError.quote(tensor)) has an invalid shape: \(reason)"
        case let .invalidOffsets(tensor, reason):
            return "safetensors: tensor \(SafeTensorsError.quote(tensor)) has invalid data_offsets: \(reason)"
        case let .reversedOffsets(tensor, begin, end):
            return "safetensors: tensor \(SafeTensorsError.quote(tensor)) has data_offsets [\(begin), \(end)] that end before they begin"
        case let .offsetsPastEnd(tensor, end, dataSize):
            return "safetensors: tensor \(SafeTensorsError.quote(tensor)) ends at data offset \(end), past the end of the \(dataSize)-byte data buffer (truncated file?)"
        case let .sizeOverflow(tensor):
            return "safetensors: tensor \(SafeTensorsError.quote(tensor)): element count × element size overflows 64 bits"
        case let .misalignedSize(tensor, bits):
            return "safetensors: tensor \(SafeTensorsError.quote(tensor)) has \(bits) bits of data, not a whole number of bytes"
        case let .byteCountMismatch(tensor, dtype, shape, expected, actual):
            return "safetensors: tensor \(SafeTensorsError.quote(tensor)) of dtype \(dtype) and shape \(shape) needs \(expected) bytes, but data_offsets span \(actual)"
        case let .overlappingTensors(first, second):
            return "safetensors: tensors \(SafeTensorsError.quote(first)) and \(SafeTensorsError.quote(second)) overlap in the data buffer"
        case let .gapInData(offset, length, before):
            return "safetensors: data bytes \(offset)..<\(offset + length) before tensor \(SafeTensorsError.quote(before)) belong to no tensor"
        case let .trailingBytes(offset, count):
            return "safetensors: the last \(count) data bytes, from offset \(offset), belong to no tensor"
        case let .tensorNotFound(name):
            return "safetensors: no tensor named \(SafeTensorsError.quote(name))"
        case let .cannotConvert(tensor, dtype, to):
            return "safetensors: tensor \(SafeTensorsError.quote(tensor)): cannot convert between dtype \(dtype) and \(to)"
        case let .valueOutOfRange(tensor, value, dtype):
            return "safetensors: tensor \(SafeTensorsError.quote(tensor)): value \(value) does not fit \(dtype)"
        case let .reservedName(name):
            return "safetensors: \(SafeTensorsError.quote(name)) is reserved for metadata and cannot name a tensor"
        case let .io(operation, path, code):
            return "safetensors: \(operation) \(SafeTensorsError.quote(path)) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}

extension SafeTensorsError {
    /// A name in double quotes, with control characters escaped so a hostile
    /// name cannot break the line of an error message.
    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                result += "\\u{\(String(scalar.value, radix: 16))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
