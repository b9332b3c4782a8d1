// Dequantisation of ggml blocks to f32.
//
// Block layouts (ggml `ggml-common.h`), all little-endian, 32 elements a block:
//
//   Q8_0  { f16 d; int8 qs[32]; }              x[j]      = qs[j] · d
//   Q4_0  { f16 d; uint8 qs[16]; }             x[j]      = ((qs[j] & 0xF) − 8) · d
//                                              x[j + 16] = ((qs[j] >> 4) − 8) · d
//   Q4_1  { f16 d; f16 m; uint8 qs[16]; }      x[j]      = (qs[j] & 0xF) · d + m
//                                              x[j + 16] = (qs[j] >> 4) · d + m
//
// Each value is computed as the reference (`gguf.quants`, NumPy in f32) does:
// d and m widened to f32 exactly, one f32 multiply, and for Q4_1 an f32 add.
// The products are exact (an 11-bit f16 significand times a 4- or 8-bit
// integer fits f32's 24 bits), so only Q4_1's add rounds, and fused or not
// the results agree. GGUFFileTests hold them to the reference bit for bit on
// random blocks, including ±0, subnormal, infinite and NaN scales.

extension GGMLType {
    /// Dequantises whole blocks of this type from `source` into `destination`.
    ///
    /// `source.count` must be a whole number of blocks and `destination.count`
    /// the matching number of elements (`source.count / blockByteCount ·
    /// blockSize`); anything else is a programming error and stops.
    /// Only the types with ``canDequantize`` are accepted.
    public func dequantize(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(canDequantize, "GGMLType.dequantize: \(self) has no dequantisation")
        precondition(source.count % blockByteCount == 0 && source.count / blockByteCount * blockSize == destination.count,
                     "GGMLType.dequantize(\(self)): \(source.count) bytes do not hold \(destination.count) elements")
        guard destination.count > 0, let input = source.baseAddress, let output = destination.baseAddress else { return }
        let blocks = source.count / blockByteCount
        switch self {
        case .f32:
            for i in 0..<destination.count {
                output[i] = Float(bitPattern: UInt32(littleEndian: input.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
        case .f16:
            for i in 0..<destination.count { output[i] = halfToFloat(loadHalf(input, 2 * i)) }
        case .bf16:
            for i in 0..<destination.count {
                output[i] = Float(bitPattern: UInt32(loadHalf(input, 2 * i)) << 16)
            }
        case .q8_0:
            for block in 0..<blocks {
                let base = input + block * 34
                let d = halfToFloat(loadHalf(base, 0))
                let out = output + block * 32
                for j in 0..<32 {
                    out[j] = Float(Int8(bitPattern: base.load(fromByteOffset: 2 + j, as: UInt8.self))) * d
                }
            }
        case .q4_0:
            for block in 0..<blocks {
                let base = input + block * 18
                let d = halfToFloat(loadHalf(base, 0))
                let out = output + block * 32
                for j in 0..<16 {
                    let q = base.load(fromByteOffset: 2 + j, as: UInt8.self)
                    out[j] = Float(Int(q & 0x0F) - 8) * d
                    out[j + 16] = Float(Int(q >> 4) - 8) * d
                }
            }
        case .q4_1:
            for block in 0..<blocks {
                let base = input + block * 20
                let d = halfToFloat(loadHalf(base, 0))
                let m = halfToFloat(loadHalf(base, 2))
                let out = output + block * 32
                for j in 0..<16 {
                    let q = base.load(fromByteOffset: 4 + j, as: UInt8.self)
                    let low = d * Float(q & 0x0F)
                    let high = d * Float(q >> 4)
                    out[j] = low + m
                    out[j + 16] = high + m
                }
            }
        default:
            preconditionFailure("unreachable: canDequantize checked")
        }
    }
}

@inline(__always)
private func loadHalf(_ base: UnsafeRawPointer, _ offset: Int) -> UInt16 {
    UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

/// IEEE binary16 → binary32, exactly: normals and subnormals to their value,
/// ±0, ±∞, and NaN with its sign and payload (shifted into the f32 mantissa,
/// as NumPy does). Bit manipulation, so it needs no `Float16` (absent on
/// macOS x86-64).
@inline(__always)
func halfToFloat(_ bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = UInt32(bits >> 10) & 0x1F
    let mantissa = UInt32(bits & 0x03FF)
    if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }   // ∞, NaN
    if exponent == 0 {                                                                      // ±0, subnormal
        let magnitude = Float(mantissa) * 0x1p-24                                          // exact
        return sign != 0 ? -magnitude : magnitude
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))           // rebias 15 → 127
}
