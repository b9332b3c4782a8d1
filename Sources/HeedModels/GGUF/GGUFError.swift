#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can be wrong with a GGUF file, or with a request to read
/// one. Every malformed input is reported as one of these cases; none crashes.
///
/// Cases are listed in the order ``GGUFFile`` checks them: the fixed header,
/// then each metadata entry, then each tensor description, then the layout
/// of the tensor data. Offsets in messages count bytes from the start of the
/// file unless they say otherwise.
public enum GGUFError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: Header

    /// The first four bytes are not `GGUF`.
    case badMagic([UInt8])
    /// A version other than 2 or 3 (version 1 used 32-bit counts and is not read).
    case unsupportedVersion(UInt32)
    /// The version reads as 2 or 3 only when byte-swapped: a big-endian file.
    case bigEndianFile(version: UInt32)
    /// The file ends inside `field`, which starts at `offset` and needs
    /// `needed` bytes; `available` remain.
    case truncated(field: String, offset: Int, needed: UInt64, available: Int)
    /// A count or length that cannot fit in what is left of the file (each
    /// item needs at least `minimumItemSize` bytes), or that exceeds a limit.
    case countTooLarge(field: String, count: UInt64, limit: UInt64)

    // MARK: Metadata

    /// A string (key, value or tensor name) is not valid UTF-8.
    case invalidUTF8(field: String, offset: Int)
    /// A value-type code that GGUF does not define.
    case unknownValueType(field: String, code: UInt32)
    /// A `BOOL` byte other than 0 or 1.
    case invalidBool(field: String, byte: UInt8, offset: Int)
    /// Arrays nested deeper than ``GGUFFile/maximumNestingDepth``.
    case nestingTooDeep(key: String, limit: Int)
    /// Two metadata entries with the same key.
    case duplicateKey(String)
    /// `general.alignment` is not a `UINT32` power of two.
    case invalidAlignment(found: String)

    // MARK: Tensor descriptions

    /// A tensor name of 64 bytes or more (ggml's `GGML_MAX_NAME` is 64 bytes
    /// including the terminating NUL, so names hold at most 63).
    case tensorNameTooLong(String, byteCount: Int)
    /// Two tensors with the same name.
    case duplicateTensor(String)
    /// More than four dimensions (`GGML_MAX_DIMS`).
    case tooManyDimensions(tensor: String, count: UInt32)
    /// A dimension above `Int64.max`, or a product of dimensions (or the
    /// tensor's byte size) that overflows 63 bits.
    case dimensionsOverflow(tensor: String, dimensions: [UInt64])
    /// A ggml type code that ggml does not define.
    case unknownTensorType(tensor: String, code: UInt32)
    /// The innermost dimension is not a whole number of quantisation blocks.
    case partialBlock(tensor: String, type: GGMLType, innermost: Int, blockSize: Int)
    /// A data offset that is not a multiple of the file's alignment.
    case misalignedOffset(tensor: String, offset: UInt64, alignment: Int)

    // MARK: Data layout

    /// The tensor data section (after the descriptions, padded to the
    /// alignment) starts past the end of the file.
    case dataSectionPastEnd(start: Int, fileSize: Int)
    /// A tensor's bytes reach past the end of the file; `offset` counts from
    /// the start of the data section.
    case tensorPastEnd(tensor: String, offset: UInt64, byteCount: Int, dataSize: Int)
    /// Two tensors claim some of the same bytes.
    case overlappingTensors(String, String)

    // MARK: Access

    /// No tensor of that name.
    case tensorNotFound(String)
    /// No metadata entry with that key.
    case keyNotFound(String)
    /// A metadata value has another type than the one asked for.
    case typeMismatch(key: String, expected: String, found: String)
    /// The tensor's type has no dequantisation in Heed (see ``GGMLType/canDequantize``).
    case cannotDequantize(tensor: String, type: GGMLType)
    /// A requested row range lies outside the tensor.
    case rowsOutOfRange(tensor: String, rows: Range<Int>, rowCount: Int)
    /// A file operation failed; `errno` is the C error number.
    case io(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case let .badMagic(bytes):
            return "gguf: bad magic \(bytes.map { String($0, radix: 16) }) (expected \"GGUF\" = 47 47 55 46); not a GGUF file"
        case let .unsupportedVersion(version):
            return "gguf: unsupported version \(version) (Heed reads versions 2 and 3)"
        case let .bigEndianFile(version):
            return "gguf: big-endian file (version field \(version)); only little-endian GGUF files are supported"
        case let .truncated(field, offset, needed, available):
            return "gguf: file ends inside \(field) at byte \(offset): needs \(needed) bytes, \(available) left (truncated file?)"
        case let .countTooLarge(field, count, limit):
            return "gguf: \(field) is \(count), more than the \(limit) the rest of the file can hold"
        case let .invalidUTF8(field, offset):
            return "gguf: \(field) at byte \(offset) is not valid UTF-8"
        case let .unknownValueType(field, code):
            return "gguf: \(field) has unknown value type \(code) (GGUF defines 0–12)"
        case let .invalidBool(field, byte, offset):
            return "gguf: \(field) at byte \(offset) is a BOOL with byte \(byte), not 0 or 1"
        case let .nestingTooDeep(key, limit):
            return "gguf: metadata \(GGUFError.quote(key)) nests arrays deeper than \(limit) levels"
        case let .duplicateKey(key):
            return "gguf: metadata key \(GGUFError.quote(key)) appears twice"
        case let .invalidAlignment(found):
            return "gguf: general.alignment must be a UINT32 power of two, found \(found)"
        case let .tensorNameTooLong(name, byteCount):
            return "gguf: tensor name \(GGUFError.quote(name)) has \(byteCount) bytes, more than 63"
        case let .duplicateTensor(name):
            return "gguf: tensor \(GGUFError.quote(name)) is described twice"
        case let .tooManyDimensions(tensor, count):
            return "gguf: tensor \(GGUFError.quote(tensor)) has \(count) dimensions, more than 4"
        case let .dimensionsOverflow(tensor, dimensions):
            return "gguf: tensor \(GGUFError.quote(tensor)) has dimensions \(dimensions) whose size overflows 63 bits"
        case let .unknownTensorType(tensor, code):
            return "gguf: tensor \(GGUFError.quote(tensor)) has unknown ggml type \(code)"
        case let .partialBlock(tensor, type, innermost, blockSize):
            return "gguf: tensor \(GGUFError.quote(tensor)) of type \(type) has innermost dimension \(innermost), not a multiple of its block size \(blockSize)"
        case let .misalignedOffset(tensor, offset, alignment):
            return "gguf: tensor \(GGUFError.quote(tensor)) has data offset \(offset), not a multiple of the alignment \(alignment)"
        case let .dataSectionPastEnd(start, fileSize):
            return "gguf: tensor data would start at byte \(start), past the end of the \(fileSize)-byte file (truncated file?)"
        case let .tensorPastEnd(tensor, offset, byteCount, dataSize):
            return "gguf: tensor \(GGUFError.quote(tensor)) spans data bytes \(offset) + \(byteCount), past the end of the \(dataSize)-byte data section (truncated file?)"
        case let .overlappingTensors(first, second):
            return "gguf: tensors \(GGUFError.quote(first)) and \(GGUFError.quote(second)) overlap in the data section"
        case let .tensorNotFound(name):
            return "gguf: no tensor named \(GGUFError.quote(name))"
        case let .keyNotFound(key):
            return "gguf: no metadata entry \(GGUFError.quote(key))"
        case let .typeMismatch(key, expected, found):
            return "gguf: metadata \(GGUFError.quote(key)) is \(found), expected \(expected)"
        case let .cannotDequantize(tensor, type):
            return "gguf: tensor \(GGUFError.quote(tensor)) has type \(type), which Heed cannot dequantise (F32, F16, BF16, Q8_0, Q4_0 and Q4_1 only)"
        case let .rowsOutOfRange(tensor, rows, rowCount):
            return "gguf: rows \(rows) of tensor \(GGUFError.quote(tensor)) are outside 0..<\(rowCount)"
        case let .io(operation, path, code):
            return "gguf: \(operation) \(GGUFError.quote(path)) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }

    /// A name in double quotes, control characters escaped, cut at 200
    /// characters, so a hostile name cannot flood or break a message line.
    static func quote(_ text: String) -> String {
        var result = "\""
        for (index, scalar) in text.unicodeScalars.enumerated() {
            if index == 200 { result += "…"; break }
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
