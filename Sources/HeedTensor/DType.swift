import CHeedKernels

/// An element type as named by the safetensors format.
///
/// Heed computes in `Float` (f32); every other type is a *storage* type: values
/// are converted to f32 when read and from f32 (or from ``IndexTensor``'s
/// `Int`s) when written. The raw values are the exact strings of the
/// safetensors header (`"F32"`, `"BF16"`, …), and the cases are declared in the
/// order of the reference implementation's `Dtype` enum (huggingface/safetensors,
/// `safetensors/src/tensor.rs`), which its writer uses to order tensor data.
///
/// What Heed does with each type:
///
/// | Type | read as `Float` (``SafeTensorsFile/tensor(_:)``) | read as `Int` (``SafeTensorsFile/indices(_:)``) | write |
/// |------|------|------|------|
/// | `F32`, `F64`, `F16`, `BF16` | yes (F64 rounds to nearest f32) | no | from ``Tensor`` |
/// | `F8_E4M3`, `F8_E5M2`, `F8_E8M0`, `F8_E4M3FNUZ`, `F8_E5M2FNUZ` | yes (exact) | no | no |
/// | `I8` … `I64`, `U8` … `U64` | yes (rounded to nearest f32) | yes (`U64` above `Int.max` throws) | from ``IndexTensor`` (range-checked) |
/// | `BOOL` | yes (0 or 1; any non-zero byte is true, as in NumPy) | yes | from ``IndexTensor`` (0 or 1 only) |
/// | `F4`, `F6_E2M3`, `F6_E3M2`, `C64` | no: throws ``SafeTensorsError/cannotConvert(tensor:dtype:to:)`` | no | no |
///
/// Every type is *parsed* and validated, so any file the reference accepts
/// opens in Heed and its raw bytes stay reachable through
/// ``SafeTensorsFile/rawBytes(_:)``.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    /// One byte per element, 0 = false.
    case bool = "BOOL"
    /// 4-bit float E2M1 (two per byte; packing is not interpreted by Heed).
    case float4 = "F4"
    /// 6-bit float E2M3 (packed; not interpreted by Heed).
    case float6E2M3 = "F6_E2M3"
    /// 6-bit float E3M2 (packed; not interpreted by Heed).
    case float6E3M2 = "F6_E3M2"
    /// Unsigned 8-bit integer.
    case uint8 = "U8"
    /// Signed 8-bit integer (two's complement).
    case int8 = "I8"
    /// 8-bit float, 5 exponent bits (bias 15), 2 mantissa bits, with inf and NaN:
    /// the top byte of an IEEE f16.
    case float8E5M2 = "F8_E5M2"
    /// 8-bit float "E4M3FN": 4 exponent bits (bias 7), 3 mantissa bits, no
    /// infinities, NaN = `S.1111.111`; largest finite 448.
    case float8E4M3 = "F8_E4M3"
    /// 8-bit unsigned power of two "E8M0FNU": value `2^(e − 127)`, `0xFF` is NaN.
    case float8E8M0 = "F8_E8M0"
    /// E4M3 with bias 8, no negative zero: `0x80` is the only NaN; largest 240.
    case float8E4M3FNUZ = "F8_E4M3FNUZ"
    /// E5M2 with bias 16, no infinities or negative zero: `0x80` is the only NaN.
    case float8E5M2FNUZ = "F8_E5M2FNUZ"
    /// Signed 16-bit integer, little-endian.
    case int16 = "I16"
    /// Unsigned 16-bit integer, little-endian.
    case uint16 = "U16"
    /// IEEE 754 binary16.
    case float16 = "F16"
    /// bfloat16: the top 16 bits of an f32 (8 exponent bits, 7 mantissa bits).
    case bfloat16 = "BF16"
    /// Signed 32-bit integer, little-endian.
    case int32 = "I32"
    /// Unsigned 32-bit integer, little-endian.
    case uint32 = "U32"
    /// IEEE 754 binary32, Heed's compute type.
    case float32 = "F32"
    /// Two f32s (real, imaginary); parsed but not convertible to `Float`.
    case complex64 = "C64"
    /// IEEE 754 binary64.
    case float64 = "F64"
    /// Signed 64-bit integer, little-endian.
    case int64 = "I64"
    /// Unsigned 64-bit integer, little-endian; values above `Int.max` read as `Float` only.
    case uint64 = "U64"

    /// The safetensors name, e.g. `BF16`.
    public var description: String { rawValue }

    /// Bits per element (4 for `F4`, 6 for the `F6` types).
    public var bitSize: Int {
        switch self {
        case .float4: return 4
        case .float6E2M3, .float6E3M2: return 6
        case .bool, .uint8, .int8, .float8E5M2, .float8E4M3, .float8E8M0, .float8E4M3FNUZ, .float8E5M2FNUZ: return 8
        case .int16, .uint16, .float16, .bfloat16: return 16
        case .int32, .uint32, .float32: return 32
        case .complex64, .float64, .int64, .uint64: return 64
        }
    }

    /// Bytes per element, or nil for the packed sub-byte types (`F4`, `F6_*`).
    public var byteSize: Int? { bitSize % 8 == 0 ? bitSize / 8 : nil }

    /// Whether ``SafeTensorsFile/tensor(_:)`` can convert this type to `Float`.
    public var canDecodeToFloat: Bool {
        switch self {
        case .float4, .float6E2M3, .float6E3M2, .complex64: return false
        default: return true
        }
    }

    /// Whether ``SafeTensorsFile/indices(_:)`` can read this type as `Int`s
    /// (the integer types and `BOOL`).
    public var isInteger: Bool {
        switch self {
        case .bool, .uint8, .int8, .int16, .uint16, .int32, .uint32, .int64, .uint64: return true
        default: return false
        }
    }

    /// Whether a ``Tensor`` can be written in this type: `F32`, `F64`, `F16`, `BF16`.
    public var canEncodeFloats: Bool {
        switch self {
        case .float32, .float64, .float16, .bfloat16: return true
        default: return false
        }
    }

    /// The inclusive range of integers this type stores (nil for non-integer types).
    /// `U64` is clipped to `Int.max`, the largest value an ``IndexTensor`` holds.
    public var integerRange: ClosedRange<Int>? {
        switch self {
        case .bool: return 0...1
        case .uint8: return 0...Int(UInt8.max)
        case .int8: return Int(Int8.min)...Int(Int8.max)
        case .int16: return Int(Int16.min)...Int(Int16.max)
        case .uint16: return 0...Int(UInt16.max)
        case .int32: return Int(Int32.min)...Int(Int32.max)
        case .uint32: return 0...Int(UInt32.max)
        case .int64: return Int(Int64.min)...Int(Int64.max)
        case .uint64: return 0...Int.max
        default: return nil
        }
    }

    /// Position in the reference implementation's `Dtype` enum; its writer puts
    /// larger ranks first so every tensor's data is naturally aligned.
    var referenceRank: Int { DType.allCases.firstIndex(of: self) ?? 0 }
}

// MARK: - f16 / bf16 storage for tensors

extension Tensor {
    /// The IEEE binary16 bit patterns of the elements, rounded to nearest, ties
    /// to even, in row-major order.
    ///
    /// Values beyond ±65504 round to ±infinity from `65520` on (the halfway
    /// point to the next power of two); values below 2⁻²⁵ in magnitude become
    /// ±0; f16 subnormals are produced exactly; NaN stays a quiet NaN with its
    /// sign and the top payload bits; the sign of zero is kept.
    public func float16Bits() -> [UInt16] {
        withUnsafeScalars { source in
            [UInt16](unsafeUninitializedCapacity: source.count) { out, initialized in
                if let from = source.baseAddress, let to = out.baseAddress {
                    heed_f32_to_f16(from, to, Int64(source.count))
                }
                initialized = source.count
            }
        }
    }

    /// The bfloat16 bit patterns of the elements (the top 16 bits of the
    /// nearest bf16, ties to even), in row-major order.
    ///
    /// bf16 has f32's exponent range, so only values within half a bf16 step of
    /// `Float.greatestFiniteMagnitude` round to infinity; f32 subnormals round
    /// to bf16 subnormals or ±0; NaN stays a quiet NaN with its sign.
    public func bfloat16Bits() -> [UInt16] {
        withUnsafeScalars { source in
            [UInt16](unsafeUninitializedCapacity: source.count) { out, initialized in
                if let from = source.baseAddress, let to = out.baseAddress {
                    heed_f32_to_bf16(from, to, Int64(source.count))
                }
                initialized = source.count
            }
        }
    }

    /// A tensor of `shape` whose elements are the IEEE binary16 values with the
    /// given bit patterns (exact: every f16, subnormals, infinities and NaN
    /// payloads included, is an f32).
    ///
    /// - Precondition: `float16Bits.count` equals the element count of `shape`.
    public convenience init(float16Bits: [UInt16], shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 } && Shape.count(shape) == float16Bits.count,
                     "Tensor(float16Bits:): \(float16Bits.count) values do not fill shape \(shape)")
        let storage = TensorStorage(uninitializedCount: float16Bits.count)
        float16Bits.withUnsafeBufferPointer { bits in
            if let from = bits.baseAddress { heed_f16_to_f32(from, storage.base, Int64(bits.count)) }
        }
        self.init(shape: shape, storage: storage)
    }

    /// A tensor of `shape` whose elements are the bfloat16 values with the given
    /// bit patterns (exact: a bf16 is an f32 whose low 16 bits are zero).
    ///
    /// - Precondition: `bfloat16Bits.count` equals the element count of `shape`.
    public convenience init(bfloat16Bits: [UInt16], shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 } && Shape.count(shape) == bfloat16Bits.count,
                     "Tensor(bfloat16Bits:): \(bfloat16Bits.count) values do not fill shape \(shape)")
        let storage = TensorStorage(uninitializedCount: bfloat16Bits.count)
        bfloat16Bits.withUnsafeBufferPointer { bits in
            if let from = bits.baseAddress { heed_bf16_to_f32(from, storage.base, Int64(bits.count)) }
        }
        self.init(shape: shape, storage: storage)
    }

    /// The elements rounded to the nearest value of a storage type (ties to
    /// even), returned as an f32 tensor of the same shape: exactly the values a
    /// file written in `dtype` would give back.
    ///
    /// ```
    /// rounded(to: .float16)[i] == Float(Float16(self[i]))
    /// ```
    ///
    /// `.float32` and `.float64` return the values unchanged (every f32 is an
    /// f64). The result has no autodiff history (`requiresGrad == false`):
    /// a straight-through estimator, if wanted, is the caller's choice.
    ///
    /// - Precondition: `dtype.canEncodeFloats` (F32, F64, F16 or BF16).
    public func rounded(to dtype: DType) -> Tensor {
        switch dtype {
        case .float32, .float64:
            return detached()
        case .float16:
            return Tensor(float16Bits: float16Bits(), shape: shape)
        case .bfloat16:
            return Tensor(bfloat16Bits: bfloat16Bits(), shape: shape)
        default:
            preconditionFailure("rounded(to:): \(dtype) is not a floating-point storage type Heed writes (F32, F64, F16, BF16)")
        }
    }
}
