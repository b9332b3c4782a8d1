/// The type code of a GGUF metadata value (`enum gguf_type`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// Unsigned 8-bit integer.
    case uint8 = 0
    /// Signed 8-bit integer.
    case int8 = 1
    /// Unsigned 16-bit integer, little-endian.
    case uint16 = 2
    /// Signed 16-bit integer, little-endian.
    case int16 = 3
    /// Unsigned 32-bit integer, little-endian.
    case uint32 = 4
    /// Signed 32-bit integer, little-endian.
    case int32 = 5
    /// IEEE binary32, little-endian.
    case float32 = 6
    /// One byte, 0 or 1.
    case bool = 7
    /// A u64 byte length, then that many bytes of UTF-8 (no terminator).
    case string = 8
    /// A u32 element type, a u64 count, then the elements.
    case array = 9
    /// Unsigned 64-bit integer, little-endian.
    case uint64 = 10
    /// Signed 64-bit integer, little-endian.
    case int64 = 11
    /// IEEE binary64, little-endian.
    case float64 = 12

    /// The name used in the GGUF specification, e.g. `UINT32`.
    public var description: String {
        switch self {
        case .uint8: return "UINT8"
        case .int8: return "INT8"
        case .uint16: return "UINT16"
        case .int16: return "INT16"
        case .uint32: return "UINT32"
        case .int32: return "INT32"
        case .float32: return "FLOAT32"
        case .bool: return "BOOL"
        case .string: return "STRING"
        case .array: return "ARRAY"
        case .uint64: return "UINT64"
        case .int64: return "INT64"
        case .float64: return "FLOAT64"
        }
    }

    /// Bytes of one value of a fixed-size type; nil for strings and arrays.
    var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    /// The fewest bytes one value of this type can occupy (8 for a string's
    /// length, 12 for an array's type and count): bounds counts before
    /// anything is allocated.
    var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }
}

/// One metadata value of a GGUF file.
public enum GGUFValue: Sendable, Equatable, CustomStringConvertible {
    /// A `UINT8`.
    case uint8(UInt8)
    /// An `INT8`.
    case int8(Int8)
    /// A `UINT16`.
    case uint16(UInt16)
    /// An `INT16`.
    case int16(Int16)
    /// A `UINT32`.
    case uint32(UInt32)
    /// An `INT32`.
    case int32(Int32)
    /// A `FLOAT32`.
    case float32(Float)
    /// A `BOOL`.
    case bool(Bool)
    /// A `STRING` (valid UTF-8).
    case string(String)
    /// An `ARRAY`.
    case array(GGUFArray)
    /// A `UINT64`.
    case uint64(UInt64)
    /// An `INT64`.
    case int64(Int64)
    /// A `FLOAT64`.
    case float64(Double)

    /// The value's type code.
    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        }
    }

    /// The value as an `Int` when it is an integer of any width that fits.
    public var integer: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// The value as a `Double` when it is a float or an integer.
    public var number: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        case .uint64(let v): return Double(v)
        default: return integer.map(Double.init)
        }
    }

    /// A short rendering: the type and, for scalars and short arrays, the value.
    public var description: String {
        switch self {
        case .uint8(let v): return "UINT8 \(v)"
        case .int8(let v): return "INT8 \(v)"
        case .uint16(let v): return "UINT16 \(v)"
        case .int16(let v): return "INT16 \(v)"
        case .uint32(let v): return "UINT32 \(v)"
        case .int32(let v): return "INT32 \(v)"
        case .float32(let v): return "FLOAT32 \(v)"
        case .bool(let v): return "BOOL \(v)"
        case .string(let v): return "STRING \(GGUFError.quote(v))"
        case .array(let v): return v.description
        case .uint64(let v): return "UINT64 \(v)"
        case .int64(let v): return "INT64 \(v)"
        case .float64(let v): return "FLOAT64 \(v)"
        }
    }
}

/// A GGUF metadata array: one element type, stored as a typed Swift array
/// (a 49,152-string vocabulary is one `[String]`, not 49,152 enum boxes).
/// Arrays of arrays may mix element types between their inner arrays.
public enum GGUFArray: Sendable, Equatable, CustomStringConvertible {
    /// `ARRAY[UINT8]`.
    case uint8([UInt8])
    /// `ARRAY[INT8]`.
    case int8([Int8])
    /// `ARRAY[UINT16]`.
    case uint16([UInt16])
    /// `ARRAY[INT16]`.
    case int16([Int16])
    /// `ARRAY[UINT32]`.
    case uint32([UInt32])
    /// `ARRAY[INT32]`.
    case int32([Int32])
    /// `ARRAY[FLOAT32]`.
    case float32([Float])
    /// `ARRAY[BOOL]`.
    case bool([Bool])
    /// `ARRAY[STRING]`.
    case string([String])
    /// `ARRAY[ARRAY]`: each inner array has its own element type.
    case array([GGUFArray])
    /// `ARRAY[UINT64]`.
    case uint64([UInt64])
    /// `ARRAY[INT64]`.
    case int64([Int64])
    /// `ARRAY[FLOAT64]`.
    case float64([Double])

    /// The element type code.
    public var elementType: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        }
    }

    /// Number of elements.
    public var count: Int {
        switch self {
        case .uint8(let a): return a.count
        case .int8(let a): return a.count
        case .uint16(let a): return a.count
        case .int16(let a): return a.count
        case .uint32(let a): return a.count
        case .int32(let a): return a.count
        case .float32(let a): return a.count
        case .bool(let a): return a.count
        case .string(let a): return a.count
        case .array(let a): return a.count
        case .uint64(let a): return a.count
        case .int64(let a): return a.count
        case .float64(let a): return a.count
        }
    }

    /// The elements as `Int`s when they are integers that all fit.
    public var integers: [Int]? {
        switch self {
        case .uint8(let a): return a.map(Int.init)
        case .int8(let a): return a.map(Int.init)
        case .uint16(let a): return a.map(Int.init)
        case .int16(let a): return a.map(Int.init)
        case .uint32(let a): return a.map(Int.init)
        case .int32(let a): return a.map(Int.init)
        case .int64(let a): return a.map(Int.init)
        case .uint64(let a):
            var result: [Int] = []
            result.reserveCapacity(a.count)
            for v in a {
                guard let i = Int(exactly: v) else { return nil }
                result.append(i)
            }
            return result
        default: return nil
        }
    }

    /// `ARRAY[TYPE] (count)`, e.g. `ARRAY[STRING] (49152)`.
    public var description: String {
        if case .array(let inner) = self {
            let types = Set(inner.map { $0.elementType.description }).sorted().joined(separator: "|")
            return "ARRAY[ARRAY[\(types)]] (\(count))"
        }
        return "ARRAY[\(elementType)] (\(count))"
    }
}
