import CHeedKernels

// Conversion between the little-endian element bytes of a safetensors file
// and Heed's Float / Int values. All loads are unaligned loads from raw
// memory (a file's data buffer starts at 8 + N, which need not be aligned),
// and every conversion works in bounded chunks so no temporary grows with
// the tensor.

/// Elements converted per chunk when going through a temporary buffer.
private let chunkElements = 1 << 16

/// Reading stored elements as `Float` or `Int`.
enum ElementDecoding {
    /// Fills `out` (count = element count) from `source` (count = element count
    /// × dtype size). The caller has checked `dtype.canDecodeToFloat` and the sizes.
    static func decodeFloats(_ dtype: DType, from source: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let n = out.count
        guard n > 0, let to = out.baseAddress else { return }
        switch dtype {
        case .float32:
            #if _endian(little)
            UnsafeMutableRawPointer(to).copyMemory(from: source.baseAddress!, byteCount: n * 4)  // n > 0: source is non-empty
            #else
            for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            #endif
        case .float16, .bfloat16:
            withUnsafeTemporaryAllocation(of: UInt16.self, capacity: Swift.min(n, chunkElements)) { bits in
                var start = 0
                while start < n {
                    let count = Swift.min(chunkElements, n - start)
                    for i in 0..<count {
                        bits[i] = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * (start + i), as: UInt16.self))
                    }
                    if dtype == .float16 {
                        heed_f16_to_f32(bits.baseAddress!, to + start, Int64(count))
                    } else {
                        heed_bf16_to_f32(bits.baseAddress!, to + start, Int64(count))
                    }
                    start += count
                }
            }
        case .float64:
            for i in 0..<n {
                out[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
            }
        case .float8E5M2, .float8E4M3, .float8E8M0, .float8E4M3FNUZ, .float8E5M2FNUZ:
            let table = Float8Tables.table(for: dtype)
            for i in 0..<n { out[i] = table[Int(source[i])] }
        case .bool:
            for i in 0..<n { out[i] = source[i] == 0 ? 0 : 1 }
        case .uint8:
            for i in 0..<n { out[i] = Float(source[i]) }
        case .int8:
            for i in 0..<n { out[i] = Float(Int8(bitPattern: source[i])) }
        case .int16:
            for i in 0..<n { out[i] = Float(Int16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
        case .uint16:
            for i in 0..<n { out[i] = Float(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .int32:
            for i in 0..<n { out[i] = Float(Int32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
        case .uint32:
            for i in 0..<n { out[i] = Float(UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .int64:
            for i in 0..<n { out[i] = Float(Int64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
        case .uint64:
            for i in 0..<n { out[i] = Float(UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) }
        case .float4, .float6E2M3, .float6E3M2, .complex64:
            preconditionFailure("decodeFloats: \(dtype) is not convertible (callers check canDecodeToFloat)")
        }
    }

    /// The elements of an integer (or BOOL) tensor as `Int`s.
    static func decodeIntegers(_ dtype: DType, from source: UnsafeRawBufferPointer, tensor name: String) throws(SafeTensorsError) -> [Int] {
        guard let size = dtype.byteSize, dtype.isInteger else {
            throw .cannotConvert(tensor: name, dtype: dtype, to: "Int")
        }
        let n = source.count / size
        var tooLarge: UInt64?
        let values = [Int](unsafeUninitializedCapacity: n) { out, initialized in
            for i in 0..<n {
                switch dtype {
                case .bool: out[i] = source[i] == 0 ? 0 : 1
                case .uint8: out[i] = Int(source[i])
                case .int8: out[i] = Int(Int8(bitPattern: source[i]))
                case .int16: out[i] = Int(Int16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
                case .uint16: out[i] = Int(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                case .int32: out[i] = Int(Int32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                case .uint32: out[i] = Int(UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                case .int64: out[i] = Int(Int64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                default:   // .uint64, the only other integer type
                    let value = UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                    if let exact = Int(exactly: value) { out[i] = exact } else { out[i] = 0; tooLarge = tooLarge ?? value }
                }
            }
            initialized = n
        }
        if let tooLarge { throw .valueOutOfRange(tensor: name, value: String(tooLarge), dtype: dtype) }
        return values
    }
}

/// Writing `Float` or `Int` values as stored elements.
enum ElementEncoding {
    /// Passes the little-endian bytes of `tensor`'s elements in `dtype` to
    /// `emit`, in chunks. `dtype.canEncodeFloats` must hold.
    static func encodeFloats(_ tensor: Tensor, as dtype: DType, emit: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try tensor.withUnsafeScalars { (values: UnsafeBufferPointer<Float>) throws -> Void in
            let n = values.count
            guard n > 0, let from = values.baseAddress else { return }
            switch dtype {
            case .float32:
                #if _endian(little)
                try emit(UnsafeRawBufferPointer(values))
                #else
                try chunked(n, of: UInt32.self, emit: emit) { start, out in
                    for i in out.indices { out[i] = values[start + i].bitPattern.littleEndian }
                }
                #endif
            case .float64:
                try chunked(n, of: UInt64.self, emit: emit) { start, out in
                    for i in out.indices { out[i] = Double(values[start + i]).bitPattern.littleEndian }
                }
            case .float16, .bfloat16:
                try chunked(n, of: UInt16.self, emit: emit) { start, out in
                    if dtype == .float16 {
                        heed_f32_to_f16(from + start, out.baseAddress!, Int64(out.count))
                    } else {
                        heed_f32_to_bf16(from + start, out.baseAddress!, Int64(out.count))
                    }
                    #if _endian(big)
                    for i in out.indices { out[i] = out[i].littleEndian }
                    #endif
                }
            default:
                preconditionFailure("encodeFloats: \(dtype) cannot store a Tensor (callers check canEncodeFloats)")
            }
        }
    }

    /// Passes the little-endian bytes of `values` in the integer type `dtype`
    /// to `emit`. Every value must already be in `dtype.integerRange`.
    static func encodeIntegers(_ values: [Int], as dtype: DType, emit: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        let n = values.count
        switch dtype {
        case .bool, .uint8:
            try chunked(n, of: UInt8.self, emit: emit) { start, out in
                for i in out.indices { out[i] = UInt8(truncatingIfNeeded: values[start + i]) }
            }
        case .int8:
            try chunked(n, of: Int8.self, emit: emit) { start, out in
                for i in out.indices { out[i] = Int8(truncatingIfNeeded: values[start + i]) }
            }
        case .int16:
            try chunked(n, of: Int16.self, emit: emit) { start, out in
                for i in out.indices { out[i] = Int16(truncatingIfNeeded: values[start + i]).littleEndian }
            }
        case .uint16:
            try chunked(n, of: UInt16.self, emit: emit) { start, out in
                for i in out.indices { out[i] = UInt16(truncatingIfNeeded: values[start + i]).littleEndian }
            }
        case .int32:
            try chunked(n, of: Int32.self, emit: emit) { start, out in
                for i in out.indices { out[i] = Int32(truncatingIfNeeded: values[start + i]).littleEndian }
            }
        case .uint32:
            try chunked(n, of: UInt32.self, emit: emit) { start, out in
                for i in out.indices { out[i] = UInt32(truncatingIfNeeded: values[start + i]).littleEndian }
            }
        case .int64:
            try chunked(n, of: Int64.self, emit: emit) { start, out in
                for i in out.indices { out[i] = Int64(values[start + i]).littleEndian }
            }
        case .uint64:
            try chunked(n, of: UInt64.self, emit: emit) { start, out in
                for i in out.indices { out[i] = UInt64(truncatingIfNeeded: values[start + i]).littleEndian }
            }
        default:
            preconditionFailure("encodeIntegers: \(dtype) is not an integer type (callers check isInteger)")
        }
    }

    /// Fills a temporary buffer of up to `chunkElements` elements at a time
    /// with `fill(firstIndex, buffer)` and emits its bytes.
    private static func chunked<T>(_ n: Int, of type: T.Type, emit: (UnsafeRawBufferPointer) throws -> Void,
                                   fill: (Int, UnsafeMutableBufferPointer<T>) -> Void) rethrows {
        guard n > 0 else { return }
        try withUnsafeTemporaryAllocation(of: T.self, capacity: Swift.min(n, chunkElements)) { buffer in
            var start = 0
            while start < n {
                let count = Swift.min(chunkElements, n - start)
                let slice = UnsafeMutableBufferPointer(rebasing: buffer[0..<count])
                fill(start, slice)
                try emit(UnsafeRawBufferPointer(slice))
                start += count
            }
        }
    }
}

/// Decoding tables for the 8-bit float types (256 entries each), built from
/// the format definitions (OCP 8-bit floating point spec v1.0 for E4M3 and
/// E5M2, OCP Microscaling spec v1.0 for E8M0; the FNUZ variants as defined by
/// GraphCore/AMD and implemented in ml_dtypes).
enum Float8Tables {
    static let e5m2 = build { decode($0, exponentBits: 5, mantissaBits: 2, bias: 15, style: .ieee) }
    static let e4m3 = build { decode($0, exponentBits: 4, mantissaBits: 3, bias: 7, style: .finiteWithNaN) }
    static let e4m3fnuz = build { decode($0, exponentBits: 4, mantissaBits: 3, bias: 8, style: .unsignedZero) }
    static let e5m2fnuz = build { decode($0, exponentBits: 5, mantissaBits: 2, bias: 16, style: .unsignedZero) }
    /// `2^(e − 127)`, `0xFF` NaN; no sign bit and no zero.
    static let e8m0 = build { $0 == 0xFF ? Float.nan : Float(sign: .plus, exponent: Int($0) - 127, significand: 1) }

    static func table(for dtype: DType) -> [Float] {
        switch dtype {
        case .float8E5M2: return e5m2
        case .float8E4M3: return e4m3
        case .float8E4M3FNUZ: return e4m3fnuz
        case .float8E5M2FNUZ: return e5m2fnuz
        case .float8E8M0: return e8m0
        default: preconditionFailure("Float8Tables: \(dtype) is not an 8-bit float type")
        }
    }

    enum Style {
        /// Largest exponent is inf (mantissa 0) or NaN, as in IEEE 754.
        case ieee
        /// No infinities; only all-ones exponent and mantissa is NaN ("FN").
        case finiteWithNaN
        /// No infinities, no negative zero: `0x80` is the only NaN ("FNUZ").
        case unsignedZero
    }

    private static func build(_ decode: (UInt8) -> Float) -> [Float] { (0...255).map { decode(UInt8($0)) } }

    private static func decode(_ byte: UInt8, exponentBits: Int, mantissaBits: Int, bias: Int, style: Style) -> Float {
        let sign: FloatingPointSign = byte & 0x80 != 0 ? .minus : .plus
        let exponent = Int(byte >> mantissaBits) & ((1 << exponentBits) - 1)
        let mantissa = Int(byte) & ((1 << mantissaBits) - 1)
        let allOnes = (1 << exponentBits) - 1
        switch style {
        case .ieee where exponent == allOnes:
            return mantissa == 0 ? (sign == .minus ? -.infinity : .infinity) : .nan
        case .finiteWithNaN where exponent == allOnes && mantissa == (1 << mantissaBits) - 1:
            return .nan
        case .unsignedZero where byte == 0x80:
            return .nan
        default:
            break
        }
        // Subnormal: mantissa · 2^(1 − bias − m); normal: (2^m + mantissa) · 2^(e − bias − m).
        let significand = exponent == 0 ? mantissa : (1 << mantissaBits) + mantissa
        let scale = (exponent == 0 ? 1 : exponent) - bias - mantissaBits
        return Float(sign: sign, exponent: scale, significand: Float(significand))
    }
}
