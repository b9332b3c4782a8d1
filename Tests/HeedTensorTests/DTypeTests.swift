import XCTest
import HeedTestSupport
@testable import HeedTensor

/// The nearest bfloat16 to `x`, ties to even, computed with Double arithmetic
/// alone (no bit manipulation): an independent reference for Heed's C
/// conversion. bf16 keeps 8 significant bits and f32's exponent range, so
/// near |x| ∈ [2^e, 2^(e+1)) its spacing is 2^(e−7), and 2^(−126−7) among the
/// subnormals.
func bfloat16Reference(_ x: Float) -> Double {
    if x.isNaN || x.isInfinite || x == 0 { return Double(x) }
    let magnitude = Double(x).magnitude
    let exponent = Swift.max(Int(magnitude.exponent), -126)
    let spacing = Double(sign: .plus, exponent: exponent - 7, significand: 1)
    let scaled = magnitude / spacing                     // exact: division by a power of two
    let lower = scaled.rounded(.down)
    let fraction = scaled - lower                        // exact: scaled has ≤ 24 significant bits
    var steps = lower
    if fraction > 0.5 || (fraction == 0.5 && lower.truncatingRemainder(dividingBy: 2) == 1) { steps += 1 }
    let largestFinite = Double(sign: .plus, exponent: 127, significand: 2 - 1.0 / 128)
    let rounded = steps * spacing > largestFinite ? Double.infinity : steps * spacing
    return x.sign == .minus ? -rounded : rounded
}

/// The value of a bf16 bit pattern from its fields: (−1)^s · (1 + m/128) · 2^(e−127),
/// subnormal (m/128) · 2^−126, e = 255 for infinities and NaN.
func bfloat16Value(_ bits: UInt16) -> Double {
    let sign: Double = bits & 0x8000 != 0 ? -1 : 1
    let exponent = Int(bits >> 7) & 0xFF
    let mantissa = Double(bits & 0x7F)
    if exponent == 0xFF { return mantissa == 0 ? sign * .infinity : .nan }
    if exponent == 0 { return sign * mantissa / 128 * Double(sign: .plus, exponent: -126, significand: 1) }
    return sign * (1 + mantissa / 128) * Double(sign: .plus, exponent: exponent - 127, significand: 1)
}

/// f32 inputs that probe rounding to f16: every positive finite f16, the
/// midpoint between it and the next (65520 above 65504), one f32 step either
/// side of each midpoint, both signs, 200,000 seeded random bit patterns, and
/// the special values.
func float16ProbeValues() -> [Float] {
    var values: [Float] = []
    for bits in UInt16(0)..<0x7C00 {
        let value = Float(Float16(bitPattern: bits))
        let next = bits == 0x7BFF ? 65536 : Float(Float16(bitPattern: bits + 1))
        let midpoint = (value + next) / 2                 // exact: at most 12 significant bits
        values += [value, midpoint, midpoint.nextUp, midpoint.nextDown]
    }
    values += values.map { -$0 }
    var generator = RandomGenerator(seed: 16)
    for _ in 0..<200_000 { values.append(Float(bitPattern: generator.nextWord())) }
    values += [0, -0.0, .infinity, -.infinity, .nan, -.nan, .signalingNaN, Float(bitPattern: 0x7FC1_2345),
               .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
               0x1p-24, 0x1p-25, 0x1.000002p-25, 0x1p-26, 0x1.8p-24, 0x1p-14, 65504, 65519.99, 65520, 65536, 1e10]
    return values
}

final class DTypeTests: XCTestCase {
    func testNamesAndSizesMatchTheFormat() {
        // The byte sizes of the types Swift has natively, and the format's names.
        let native: [(DType, Int, String)] = [
            (.float64, MemoryLayout<Double>.size, "F64"), (.float32, MemoryLayout<Float>.size, "F32"),
            (.float16, MemoryLayout<Float16>.size, "F16"), (.bfloat16, 2, "BF16"),
            (.int64, MemoryLayout<Int64>.size, "I64"), (.uint64, MemoryLayout<UInt64>.size, "U64"),
            (.int32, MemoryLayout<Int32>.size, "I32"), (.uint32, MemoryLayout<UInt32>.size, "U32"),
            (.int16, MemoryLayout<Int16>.size, "I16"), (.uint16, MemoryLayout<UInt16>.size, "U16"),
            (.int8, MemoryLayout<Int8>.size, "I8"), (.uint8, MemoryLayout<UInt8>.size, "U8"),
            (.bool, MemoryLayout<Bool>.size, "BOOL"), (.complex64, 2 * MemoryLayout<Float>.size, "C64"),
        ]
        for (dtype, size, name) in native {
            XCTAssertEqual(dtype.byteSize, size, "\(dtype)")
            XCTAssertEqual(dtype.bitSize, 8 * size, "\(dtype)")
            XCTAssertEqual(DType(rawValue: name), dtype)
        }
        XCTAssertNil(DType.float4.byteSize)
        XCTAssertNil(DType.float6E2M3.byteSize)
        XCTAssertEqual(DType.float8E4M3.byteSize, 1)
        XCTAssertNil(DType(rawValue: "f32"), "names are case-sensitive")
        for dtype in DType.allCases {
            XCTAssertEqual(dtype.integerRange != nil, dtype.isInteger, "\(dtype)")
            if dtype.isInteger { XCTAssertTrue(dtype.canDecodeToFloat) }
        }
        XCTAssertEqual(DType.int32.integerRange, Int(Int32.min)...Int(Int32.max))
    }

    // MARK: f16

    func testFloat16ToFloat32ForAllBitPatternsMatchesNativeFloat16() {
        let bits = (0...0xFFFF).map { UInt16($0) }
        let converted = Tensor(float16Bits: bits, shape: [256, 256]).scalars
        XCTAssertEqual(converted.count, 65_536)
        // Swift (compiler-rt) quiets a signalling NaN; Heed's kernel keeps the bits
        // as they are. Both are NaN with the same sign and payload, so NaNs are
        // compared without the quiet bit (0x0040_0000).
        var mismatches = 0
        for (i, pattern) in bits.enumerated() {
            let expected = Float(Float16(bitPattern: pattern))
            let mask: UInt32 = expected.isNaN ? ~0x0040_0000 : ~0
            if converted[i].bitPattern & mask != expected.bitPattern & mask || converted[i].isNaN != expected.isNaN {
                mismatches += 1
                if mismatches <= 5 {
                    XCTFail("f16 0x\(String(pattern, radix: 16)): got \(converted[i]) (0x\(String(converted[i].bitPattern, radix: 16))), expected \(expected) (0x\(String(expected.bitPattern, radix: 16)))")
                }
            }
        }
        XCTAssertEqual(mismatches, 0)
    }

    func testFloat32ToFloat16RoundsToNearestEvenLikeNativeFloat16() {
        let values = float16ProbeValues()
        let bits = Tensor(values, shape: [values.count]).float16Bits()
        var mismatches = 0
        for (value, got) in zip(values, bits) {
            let expected = Float16(value).bitPattern
            let agree = value.isNaN
                ? (got & 0x7C00 == 0x7C00 && got & 0x03FF != 0 && got & 0x8000 == expected & 0x8000 && got & 0x0200 != 0)
                : got == expected
            if !agree {
                mismatches += 1
                if mismatches <= 5 {
                    XCTFail("\(value) (0x\(String(value.bitPattern, radix: 16))): got 0x\(String(got, radix: 16)), expected 0x\(String(expected, radix: 16))")
                }
            }
        }
        XCTAssertEqual(mismatches, 0, "of \(values.count) values")
        XCTAssertGreaterThan(values.count, 450_000)
    }

    func testFloat16OverflowBoundaryAndSpecialValues() {
        let values: [Float] = [65520, 65519.99, -65520, -65519.99, 65504, .infinity, -.infinity, 0, -0.0, .nan, 0x1p-25, 0x1.000002p-25, 1e-8]
        let bits = Tensor(values, shape: [values.count]).float16Bits()
        XCTAssertEqual(bits[0], 0x7C00, "65520 is halfway to 65536 and rounds to even: inf")
        XCTAssertEqual(bits[1], 0x7BFF, "65519.99 rounds down to 65504")
        XCTAssertEqual(bits[2], 0xFC00)
        XCTAssertEqual(bits[3], 0xFBFF)
        XCTAssertEqual(bits[4], 0x7BFF)
        XCTAssertEqual(bits[5], 0x7C00)
        XCTAssertEqual(bits[6], 0xFC00)
        XCTAssertEqual(bits[7], 0x0000)
        XCTAssertEqual(bits[8], 0x8000, "the sign of zero is kept")
        XCTAssertTrue(Float16(bitPattern: bits[9]).isNaN)
        XCTAssertEqual(bits[10], 0x0000, "2^-25 is halfway to the smallest subnormal: ties to even (0)")
        XCTAssertEqual(bits[11], 0x0001, "just above halfway rounds up to 2^-24")
        XCTAssertEqual(bits[12], 0x0000)
        for (value, pattern) in zip(values, bits) where !value.isNaN {
            XCTAssertEqual(pattern, Float16(value).bitPattern, "\(value)")
        }
    }

    func testFloat16BitsRoundTripThroughTensor() {
        // Every pattern except signalling NaNs (which become quiet) survives f16 → f32 → f16.
        func isSignalingNaN(_ pattern: UInt16) -> Bool {
            let isNaN = pattern & 0x7C00 == 0x7C00 && pattern & 0x03FF != 0
            return isNaN && pattern & 0x0200 == 0
        }
        let bits = (0...0xFFFF).map { UInt16($0) }.filter { !isSignalingNaN($0) }
        XCTAssertEqual(Tensor(float16Bits: bits, shape: [bits.count]).float16Bits(), bits)
        XCTAssertEqual(Tensor.zeros([0]).float16Bits(), [])
        XCTAssertEqual(Tensor(scalar: 1).float16Bits(), [0x3C00])
    }

    // MARK: bf16

    func testFloat32ToBFloat16MatchesDoubleReference() {
        var values: [Float] = []
        for high in UInt32(0)..<0x7F80 {                      // every positive finite bf16
            let value = Float(bitPattern: high << 16)
            let midpoint = Float(bitPattern: high << 16 | 0x8000)   // halfway to the next bf16
            values += [value, midpoint, midpoint.nextUp, midpoint.nextDown]
        }
        values += values.map { -$0 }
        var generator = RandomGenerator(seed: 1_616)
        for _ in 0..<200_000 { values.append(Float(bitPattern: generator.nextWord())) }
        values += [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
                   .greatestFiniteMagnitude, 3.3895314e38, 3.3895313e38, 0x1p-133, 0x1p-134, 0x1.8p-134]
        let bits = Tensor(values, shape: [values.count]).bfloat16Bits()
        var mismatches = 0
        for (value, got) in zip(values, bits) where !value.isNaN {
            let expected = bfloat16Reference(value)
            let gotValue = Double(Float(bitPattern: UInt32(got) << 16))
            if gotValue != expected || gotValue.sign != expected.sign {
                mismatches += 1
                if mismatches <= 5 { XCTFail("\(value) (0x\(String(value.bitPattern, radix: 16))): got \(gotValue), expected \(expected)") }
            }
        }
        XCTAssertEqual(mismatches, 0, "of \(values.count) values")
        XCTAssertGreaterThan(values.count, 450_000)
    }

    func testBFloat16HalfwayCasesAndNaN() {
        // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: ties to even (1).
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6).
        let values: [Float] = [1 + 0x1p-8, 1 + 3 * 0x1p-8, -(1 + 0x1p-8), .nan, -.nan, .signalingNaN, Float(bitPattern: 0x7F80_0001)]
        let bits = Tensor(values, shape: [values.count]).bfloat16Bits()
        XCTAssertEqual(bits[0], 0x3F80)
        XCTAssertEqual(bits[1], 0x3F82)
        XCTAssertEqual(bits[2], 0xBF80)
        for (value, pattern) in zip(values[3...], bits[3...]) {
            XCTAssertEqual(pattern & 0x7F80, 0x7F80, "NaN stays NaN: \(value)")
            XCTAssertNotEqual(pattern & 0x7F, 0, "NaN, not infinity: \(value)")
            XCTAssertNotEqual(pattern & 0x40, 0, "quiet NaN: \(value)")
            XCTAssertEqual(pattern & 0x8000 != 0, value.sign == .minus, "sign kept: \(value)")
        }
    }

    func testBFloat16ToFloat32ForAllBitPatterns() {
        let bits = (0...0xFFFF).map { UInt16($0) }
        let converted = Tensor(bfloat16Bits: bits, shape: [65_536]).scalars
        for (pattern, value) in zip(bits, converted) {
            let expected = bfloat16Value(pattern)
            if expected.isNaN {
                XCTAssertTrue(value.isNaN, "0x\(String(pattern, radix: 16))")
            } else {
                XCTAssertEqual(Double(value), expected, "0x\(String(pattern, radix: 16))")
                XCTAssertEqual(value.sign, expected.sign, "0x\(String(pattern, radix: 16))")
            }
        }
        XCTAssertEqual(Tensor(bfloat16Bits: [0x3F80, 0xC040], shape: [2]).bfloat16Bits(), [0x3F80, 0xC040])
    }

    // MARK: rounded(to:)

    func testRoundedToStorageTypesGivesRepresentableValues() {
        let x = Tensor.randomNormal([7, 9], std: 100, seed: 42)
        let bf16 = x.rounded(to: .bfloat16)
        XCTAssertEqual(bf16.shape, [7, 9])
        for (original, rounded) in zip(x.scalars, bf16.scalars) {
            XCTAssertEqual(rounded.bitPattern & 0xFFFF, 0, "exactly representable in bf16")
            XCTAssertEqual(Double(rounded), bfloat16Reference(original))
        }
        XCTAssertEqual(bf16.rounded(to: .bfloat16).scalars, bf16.scalars, "idempotent")

        let f16 = x.rounded(to: .float16)
        XCTAssertEqual(f16.scalars, x.scalars.map { Float(Float16($0)) })
        XCTAssertEqual(f16.rounded(to: .float16).scalars, f16.scalars, "idempotent")
        XCTAssertNotEqual(f16.scalars, x.scalars, "random normals are not all f16 values")

        XCTAssertEqual(x.rounded(to: .float32).scalars, x.scalars)
        XCTAssertEqual(x.rounded(to: .float64).scalars, x.scalars)
        let tracked = Tensor([1.5], shape: [1], requiresGrad: true)
        XCTAssertFalse(tracked.rounded(to: .float16).requiresGrad)
    }
}
