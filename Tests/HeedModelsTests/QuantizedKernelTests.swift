import Foundation
import CHeedKernels
import XCTest
@testable import HeedModels

/// The block kernels of heed_quant.h (AVX2 and forced-portable) against
/// GGMLType.dequantize (itself bit-exact with gguf.quants, GGUFFileTests)
/// followed by a double-precision product.
final class QuantizedKernelTests: XCTestCase {
    /// Random blocks: scales drawn as f16 bit patterns of moderate magnitude
    /// (both signs), quantised values uniform over every bit pattern.
    func randomBlocks(_ type: GGMLType, rows: Int, columns: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        var bytes = [UInt8]((0 ..< rows * columns / 32 * type.blockByteCount).map { _ in UInt8(truncatingIfNeeded: next()) })
        for block in 0 ..< rows * columns / 32 {
            let base = block * type.blockByteCount
            let halves = type == .q4_1 ? 2 : 1
            for h in 0 ..< halves {
                // exponent 8…17 (2^-7 … 2^2), random sign and mantissa
                let bits = UInt16(next() & 0x83FF) | UInt16(8 + next() % 10) << 10
                bytes[base + 2 * h] = UInt8(bits & 0xFF)
                bytes[base + 2 * h + 1] = UInt8(bits >> 8)
            }
        }
        return bytes
    }

    func quantType(_ type: GGMLType) -> heed_quant_type { heed_quant_type(rawValue: UInt32(type.rawValue)) }

    func testDequantizeIsBitExact() {
        for portable in [false, true] {
            heed_kernels_force_portable(portable ? 1 : 0)
            defer { heed_kernels_force_portable(0) }
            for type in [GGMLType.q4_0, .q4_1, .q8_0] {
                let (rows, columns) = (5, 96)
                var bytes = randomBlocks(type, rows: rows, columns: columns, seed: 7)
                // Special scales in the first blocks: ±0, a subnormal, ∞, NaN.
                for (block, bits) in [0x0000, 0x8000, 0x0001, 0x7C00, 0x7E01].enumerated() as EnumeratedSequence<[UInt16]> {
                    bytes[block * type.blockByteCount] = UInt8(bits & 0xFF)
                    bytes[block * type.blockByteCount + 1] = UInt8(bits >> 8)
                }
                var expected = [Float](repeating: 0, count: rows * columns)
                bytes.withUnsafeBytes { source in expected.withUnsafeMutableBufferPointer { type.dequantize(source, into: $0) } }
                var found = [Float](repeating: 1, count: 3 * columns)
                XCTAssertEqual(heed_quant_row_bytes(quantType(type), Int64(columns)), Int64(columns / 32 * type.blockByteCount))
                bytes.withUnsafeBytes { heed_quant_dequantize_f32(quantType(type), $0.baseAddress!, Int64(columns), 1, 4, &found) }
                let expectedRows = Array(expected[columns ..< 4 * columns])
                XCTAssertEqual(found.map(\.bitPattern), expectedRows.map(\.bitPattern), "\(type) portable \(portable)")
            }
        }
    }

    func testMatmulMatchesDequantizedProduct() {
        for portable in [false, true] {
            heed_kernels_force_portable(portable ? 1 : 0)
            defer { heed_kernels_force_portable(0) }
            for type in [GGMLType.q4_0, .q4_1, .q8_0] {
                for (columns, n) in [(32, 1), (96, 2), (576, 1), (576, 3), (160, 4), (64, 5), (1536, 9)] {
                    let rows = 7
                    let bytes = randomBlocks(type, rows: rows, columns: columns, seed: UInt64(columns * 31 + n))
                    var weights = [Float](repeating: 0, count: rows * columns)
                    bytes.withUnsafeBytes { source in weights.withUnsafeMutableBufferPointer { type.dequantize(source, into: $0) } }
                    let x = (0 ..< n * columns).map { Float(sin(Double($0) * 0.37)) * 2 }
                    // Rows 2 ..< 6 only, into a strided output: other entries untouched.
                    let stride = rows + 3
                    var y = [Float](repeating: -7, count: n * stride)
                    bytes.withUnsafeBytes {
                        heed_quant_matmul_f32(quantType(type), $0.baseAddress!, Int64(columns), 2, 6, x, Int64(n), &y, Int64(stride))
                    }
                    for t in 0 ..< n {
                        for r in 0 ..< stride {
                            guard (2 ..< 6).contains(r) else {
                                XCTAssertEqual(y[t * stride + r], -7, "row \(r) outside the range was written")
                                continue
                            }
                            var exact = 0.0, magnitude = 0.0
                            for c in 0 ..< columns {
                                let product = Double(weights[r * columns + c]) * Double(x[t * columns + c])
                                exact += product
                                magnitude += abs(product)
                            }
                            XCTAssertEqual(Double(y[t * stride + r]), exact, accuracy: 1e-6 * magnitude + 1e-30,
                                           "\(type) columns \(columns) n \(n) token \(t) row \(r) portable \(portable)")
                        }
                    }
                }
            }
        }
    }

    /// 8-bit activation blocks: d = max|x|/127, q = round(x·(1/d)) to nearest even, s = d·Σq —
    /// checked element by element against the definition.
    func testActivationQuantization() {
        let columns = 96
        var x = (0 ..< 2 * columns).map { Float(sin(Double($0) * 1.3)) * 3 }
        x[32 ..< 64] = ArraySlice(repeating: 0, count: 32)            // an all-zero block: d = 0, q = 0
        for portable in [false, true] {
            heed_kernels_force_portable(portable ? 1 : 0)
            defer { heed_kernels_force_portable(0) }
            var blocks = [heed_q8_block](repeating: heed_q8_block(), count: 2 * columns / 32)
            heed_quant_activations_q8(x, 2, Int64(columns), &blocks)
            for (index, block) in blocks.enumerated() {
                let slice = x[(index * 32) ..< (index * 32 + 32)]
                let d = slice.map(abs).max()! / 127
                XCTAssertEqual(block.d, d)
                let q = withUnsafeBytes(of: block.q) { Array($0.bindMemory(to: Int8.self)) }
                let expected = slice.map { d == 0 ? Int8(0) : Int8(($0 * (1 / d)).rounded(.toNearestOrEven)) }
                XCTAssertEqual(q, expected, "block \(index)")
                XCTAssertEqual(block.s, d * Float(q.reduce(0) { $0 + Int($1) }))
            }
        }
    }

    /// The integer-dot-product kernel equals its definition (the exact
    /// integer sums, then d_w·d_x·Σqp + m·s in double) to f32 rounding, and
    /// stays within the quantisation error of the f32-activation product.
    func testInt8ActivationMatmul() {
        for portable in [false, true] {
            heed_kernels_force_portable(portable ? 1 : 0)
            defer { heed_kernels_force_portable(0) }
            for type in [GGMLType.q4_0, .q4_1, .q8_0] {
                let (rows, columns, n) = (6, 160, 3)
                let bytes = randomBlocks(type, rows: rows, columns: columns, seed: 99)
                var weights = [Float](repeating: 0, count: rows * columns)
                bytes.withUnsafeBytes { source in weights.withUnsafeMutableBufferPointer { type.dequantize(source, into: $0) } }
                let x = (0 ..< n * columns).map { Float(cos(Double($0) * 0.71)) }
                var blocks = [heed_q8_block](repeating: heed_q8_block(), count: n * columns / 32)
                heed_quant_activations_q8(x, Int64(n), Int64(columns), &blocks)
                var y = [Float](repeating: 0, count: n * rows)
                bytes.withUnsafeBytes {
                    heed_quant_matmul_q8(quantType(type), $0.baseAddress!, Int64(columns), 0, Int64(rows), blocks, Int64(n), &y, Int64(rows))
                }
                for t in 0 ..< n {
                    for r in 0 ..< rows {
                        // The definition, from the quantised activations.
                        var definition = 0.0, magnitude = 0.0, exact = 0.0
                        for c in 0 ..< columns {
                            let block = blocks[t * columns / 32 + c / 32]
                            let p = withUnsafeBytes(of: block.q) { Double($0.bindMemory(to: Int8.self)[c % 32]) }
                            let term = Double(weights[r * columns + c]) * Double(block.d) * p
                            definition += term
                            magnitude += abs(term)
                            exact += Double(weights[r * columns + c]) * Double(x[t * columns + c])
                        }
                        let found = Double(y[t * rows + r])
                        XCTAssertEqual(found, definition, accuracy: 1e-5 * magnitude, "\(type) t \(t) r \(r) portable \(portable)")
                        // Quantisation error: at most half a step (d/2) per activation.
                        let bound = (0 ..< columns).reduce(0.0) { sum, c in
                            sum + abs(Double(weights[r * columns + c])) * Double(blocks[t * columns / 32 + c / 32].d) / 2
                        }
                        XCTAssertEqual(found, exact, accuracy: bound + 1e-5 * magnitude, "\(type) t \(t) r \(r)")
                    }
                }
            }
        }
    }

    /// heed_attention_decode_f32 against softmax(scale·Kq)V in double: head
    /// sizes on and off the vector path (59), beyond 64 (two register blocks)
    /// and strided rows; lengths below, at and past the 4-key step.
    func testDecodeAttention() {
        for portable in [false, true] {
            heed_kernels_force_portable(portable ? 1 : 0)
            defer { heed_kernels_force_portable(0) }
            for depth in [8, 59, 64, 136] {
                for length in [1, 3, 4, 7, 130] {
                    let stride = depth + 5
                    let keys = (0 ..< length * stride).map { Float(sin(Double($0) * 0.9)) }
                    let values = (0 ..< length * stride).map { Float(cos(Double($0) * 0.4)) }
                    let query = (0 ..< depth).map { Float(sin(Double($0) * 2.1)) }
                    let scale = 1 / Float(depth).squareRoot()
                    var scores = [Float](repeating: 0, count: length), out = [Float](repeating: 0, count: depth)
                    heed_attention_decode_f32(query, keys, values, Int64(length), Int64(depth), Int64(stride), scale, &scores, &out)
                    let logits = (0 ..< length).map { t in
                        Double(scale) * (0 ..< depth).reduce(0.0) { $0 + Double(query[$1]) * Double(keys[t * stride + $1]) }
                    }
                    let top = logits.max()!, weights = logits.map { Foundation.exp($0 - top) }, total = weights.reduce(0, +)
                    for j in 0 ..< depth {
                        let expected = (0 ..< length).reduce(0.0) { $0 + weights[$1] / total * Double(values[$1 * stride + j]) }
                        XCTAssertEqual(Double(out[j]), expected, accuracy: 1e-5, "D \(depth) T \(length) j \(j) portable \(portable)")
                    }
                    XCTAssertEqual(Double(scores.reduce(0, +)), 1, accuracy: 1e-5)
                }
            }
        }
    }
}
