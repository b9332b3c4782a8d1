import CHeedKernels
import Foundation
import XCTest
import HeedTestSupport
@testable import HeedTensor

/// heed_packed_linear_f32 (heed_packed.h) against a double-precision
/// x Wᵀ + bias + residual, and its three micro-kernels (AVX-512, AVX2+FMA,
/// portable) against each other bit for bit: each adds the same products in
/// the same order with one fused multiply-add each.
final class PackedLinearTests: XCTestCase {
    override func tearDown() {
        heed_kernels_force_portable(0)
        heed_kernels_allow_avx512(1)
        super.tearDown()
    }

    /// out for every kernel this CPU has (AVX-512 only where present), by name.
    func everyKernel(_ body: () -> [Float]) -> [(String, [Float])] {
        var results: [(String, [Float])] = []
        for (portable, avx512) in [(0, 1), (0, 0), (1, 0)] {
            heed_kernels_force_portable(Int32(portable))
            heed_kernels_allow_avx512(Int32(avx512))
            let name = String(cString: heed_packed_isa())
            if !results.contains(where: { $0.0 == name }) { results.append((name, body())) }
        }
        heed_kernels_force_portable(0)
        heed_kernels_allow_avx512(1)
        return results
    }

    /// Edges of the blocking: rows around the register blocks (6, 12) and the
    /// row block (96); columns around a panel (16), a panel pair (32) and the
    /// column block (192); depths from 0 to past a cache line.
    func testEveryKernelEqualsTheDoubleReferenceAndEachOther() {
        let shapes = [(1, 1, 1), (5, 17, 3), (13, 33, 7), (12, 32, 64), (25, 15, 0), (97, 200, 19), (7, 193, 40),
                      (100, 48, 130), (2, 224, 1)]
        for (index, (m, n, k)) in shapes.enumerated() {
            let seed = UInt64(1000 + 10 * index)
            let lda = k + 3, ldo = n + 5                                   // strided rows on both sides
            let a = Tensor.randomNormal([m * lda], seed: seed).scalars
            let w = Tensor.randomNormal([n * k], seed: seed + 1).scalars
            let bias = Tensor.randomNormal([n], seed: seed + 2).scalars
            let residual = Tensor.randomNormal([m * ldo], seed: seed + 3).scalars
            var panels = [Float](repeating: .nan, count: Int(heed_packed_count(Int64(n), Int64(k))))
            heed_pack_weights_f32(w, Int64(n), Int64(k), &panels)
            for (useBias, useResidual, inPlace) in [(false, false, false), (true, false, false), (false, true, false),
                                                    (true, true, false), (true, true, true)] {
                let label = "m \(m) n \(n) k \(k), bias \(useBias), residual \(useResidual), in place \(inPlace)"
                let results = everyKernel {
                    var out = inPlace ? residual : [Float](repeating: -7, count: m * ldo)   // -7: must survive past column n
                    bias.withUnsafeBufferPointer { b in residual.withUnsafeBufferPointer { r in
                        out.withUnsafeMutableBufferPointer { o in
                            heed_packed_linear_f32(Int64(m), Int64(n), Int64(k), a, Int64(lda), panels,
                                                   useBias ? b.baseAddress : nil,
                                                   useResidual ? (inPlace ? UnsafePointer(o.baseAddress) : r.baseAddress) : nil,
                                                   Int64(ldo), o.baseAddress, Int64(ldo))
                        }
                    } }
                    return out
                }
                for (name, out) in results.dropFirst() {
                    XCTAssertEqual(out.map(\.bitPattern), results[0].1.map(\.bitPattern), "\(results[0].0) vs \(name), \(label)")
                }
                let out = results[0].1
                for i in 0 ..< m {
                    for j in 0 ..< ldo {
                        guard j < n else {
                            XCTAssertEqual(out[i * ldo + j], inPlace ? residual[i * ldo + j] : -7, "past column n, \(label)")
                            continue
                        }
                        var sum = (useBias ? Double(bias[j]) : 0) + (useResidual ? Double(residual[i * ldo + j]) : 0)
                        var magnitude = abs(sum)
                        for kk in 0 ..< k {
                            sum += Double(a[i * lda + kk]) * Double(w[j * k + kk])
                            magnitude += abs(Double(a[i * lda + kk]) * Double(w[j * k + kk]))
                        }
                        // Each of the k + 1 roundings is at most 2^-24 of the running magnitude.
                        XCTAssertEqual(Double(out[i * ldo + j]), sum, accuracy: Double(k + 2) * 0x1p-24 * magnitude + 1e-30,
                                       "(\(i), \(j)), \(label)")
                    }
                }
            }
        }
    }

    /// The AVX2 packing (8 × 8 blocks transposed in registers, the rest one by
    /// one) puts every float where the definition says, on shapes with and
    /// without full blocks, row strides wider than the rows.
    func testPackingEveryShape() {
        for (rows, columns, stride) in [(1, 1, 1), (8, 8, 8), (16, 64, 64), (17, 59, 61), (100, 64, 64), (37, 9, 12),
                                        (95, 128, 130), (7, 16, 16)] {
            let source = Tensor.randomNormal([rows * stride], seed: UInt64(rows * 1000 + columns)).scalars
            let count = Int(heed_flash_panels_count(Int64(rows), Int64(columns)))
            for (name, packed) in everyKernel({ () -> [Float] in
                var panels = [Float](repeating: .nan, count: count)
                heed_flash_pack_panels(source, Int64(rows), Int64(columns), Int64(stride), &panels)
                return panels
            }) {
                for p in 0 ..< (rows + 15) / 16 {
                    for c in 0 ..< columns {
                        for j in 0 ..< 16 {
                            let row = 16 * p + j
                            let expected = row < rows ? source[row * stride + c] : 0
                            if packed[(p * columns + c) * 16 + j] != expected {
                                XCTFail("\(name): rows \(rows) columns \(columns): panel \(p), column \(c), lane \(j)")
                                return
                            }
                        }
                    }
                }
            }
        }
    }

    /// Value slabs (the forward's P V operand): slab s, row r, lane c holds
    /// source[r, 16s + c], zeros past the last column, on widths with and
    /// without a partial slab.
    func testValueSlabsLayout() {
        for (rows, columns, stride) in [(1, 1, 1), (5, 16, 16), (7, 37, 40), (96, 64, 64), (3, 59, 59)] {
            let source = Tensor.randomNormal([rows * stride], seed: UInt64(rows * 100 + columns)).scalars
            var slabs = [Float](repeating: .nan, count: Int(heed_flash_panels_count(Int64(columns), Int64(rows))))
            XCTAssertEqual(slabs.count, (columns + 15) / 16 * 16 * rows)
            heed_flash_pack_slabs(source, Int64(rows), Int64(columns), Int64(stride), &slabs)
            for slab in 0 ..< (columns + 15) / 16 {
                for r in 0 ..< rows {
                    for c in 0 ..< 16 {
                        let column = 16 * slab + c
                        let expected = column < columns ? source[r * stride + column] : 0
                        XCTAssertEqual(slabs[(slab * rows + r) * 16 + c], expected, "slab \(slab), row \(r), lane \(c)")
                    }
                }
            }
        }
    }

    /// The packed layout is the one the header states: panel p, depth i, lane j.
    func testPackingLayout() {
        let (n, k) = (19, 3)
        let w = (0 ..< n * k).map { Float($0) }
        var panels = [Float](repeating: .nan, count: Int(heed_packed_count(Int64(n), Int64(k))))
        XCTAssertEqual(panels.count, 32 * k)
        heed_pack_weights_f32(w, Int64(n), Int64(k), &panels)
        for p in 0 ..< 2 {
            for i in 0 ..< k {
                for j in 0 ..< 16 {
                    let row = 16 * p + j
                    XCTAssertEqual(panels[(p * k + i) * 16 + j], row < n ? w[row * k + i] : 0, "panel \(p), depth \(i), lane \(j)")
                }
            }
        }
    }
}
