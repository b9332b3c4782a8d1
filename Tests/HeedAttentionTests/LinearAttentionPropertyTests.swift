import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedAttention

/// Properties of the linear / low-rank attentions that fixtures cannot show:
/// the chunked causal scans equal the causal formula written out densely,
/// FAVOR+ and RFA approach softmax attention as features grow, orthogonal
/// features beat i.i.d. ones, Linformer with identity projections is full
/// attention, grouped-query heads need no copies, and draws are reproducible.
final class LinearAttentionPropertyTests: XCTestCase {
    /// The slow reference: every weight written out, in Double.
    ///
    /// ```
    /// w_ij  = φ(q_i)·φ(k_j) · [j ≤ i + Tk − Tq if causal] · e^{Σ_{j<l≤p_i} logDecay_l} · inputScale_j
    /// out_i = Σ_j w_ij v_j / (Σ_j w_ij + ε)
    /// ```
    private func denseReference(_ queryFeatures: Tensor, _ keyFeatures: Tensor, _ value: Tensor, causal: Bool,
                                epsilon: Double = 0, decay: KernelizedAttention.Decay? = nil) -> Tensor {
        let (b, h, tq, f) = (queryFeatures.shape[0], queryFeatures.shape[1], queryFeatures.shape[2], queryFeatures.shape[3])
        let (tk, dv) = (keyFeatures.shape[2], value.shape[3])
        let (fq, fk, v) = (queryFeatures.scalars.map(Double.init), keyFeatures.scalars.map(Double.init), value.scalars.map(Double.init))
        let logDecay = decay?.logDecay.scalars.map(Double.init), inputScale = decay?.inputScale.scalars.map(Double.init)
        var out = [Float](repeating: 0, count: b * h * tq * dv)
        for bh in 0..<(b * h) {
            for i in 0..<tq {
                let position = i + tk - tq
                var numerator = [Double](repeating: 0, count: dv), denominator = 0.0
                for j in 0..<tk where !causal || j <= position {
                    var w = (0..<f).reduce(0.0) { $0 + fq[(bh * tq + i) * f + $1] * fk[(bh * tk + j) * f + $1] }
                    if let logDecay, let inputScale {
                        let carried = j < position ? ((j + 1)...position).reduce(0.0) { $0 + logDecay[bh * tk + $1] } : 0
                        w *= Foundation.exp(carried) * inputScale[bh * tk + j]
                    }
                    denominator += w
                    for d in 0..<dv { numerator[d] += w * v[(bh * tk + j) * dv + d] }
                }
                for d in 0..<dv { out[(bh * tq + i) * dv + d] = Float(numerator[d] / (denominator + epsilon)) }
            }
        }
        return Tensor(out, shape: [b, h, tq, dv])
    }

    /// Exact softmax attention softmax(q kᵀ · scale) v.
    private func softmaxAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float) -> Tensor {
        (Tensor.matmul(q, k, transposeB: true) * scale).softmax(axis: -1).matmul(v)
    }

    private func meanAbsoluteError(_ a: Tensor, _ b: Tensor) -> Double {
        zip(a.scalars, b.scalars).reduce(0.0) { $0 + Double(Swift.abs($1.0 - $1.1)) } / Double(a.count)
    }

    // MARK: Causal scans against the dense causal formula

    func testCausalScansEqualTheDenseMaskedFormula() {
        let performer = Performer(features: 12, headDimension: 5, seed: 1)
        let rfa = RandomFeatureAttention(features: 16, headDimension: 5, seed: 2)
        for (tq, tk) in [(7, 7), (3, 8), (1, 4)] {
            let q = randomTensor([2, 2, tq, 5], seed: 3, requiresGrad: false)
            let k = randomTensor([2, 2, tk, 5], seed: 4, requiresGrad: false)
            let v = randomTensor([2, 2, tk, 3], seed: 5, requiresGrad: false)
            let expected = [
                "performer": denseReference(performer.features(of: q, isQuery: true), performer.features(of: k, isQuery: false), v, causal: true),
                "rfa": denseReference(rfa.features(of: q), rfa.features(of: k), v, causal: true),
                "elu": denseReference(LinearAttention.features(q), LinearAttention.features(k), v, causal: true, epsilon: 1e-6),
            ]
            for chunk in [1, 2, 3, 5, 64] {
                let label = "Tq \(tq) Tk \(tk) chunk \(chunk)"
                assertClose(performer(query: q, key: k, value: v, causal: true, chunkSize: chunk), expected["performer"]!,
                            rtol: 1e-4, atol: 1e-5, "performer \(label)")
                assertClose(rfa(query: q, key: k, value: v, causal: true, chunkSize: chunk), expected["rfa"]!,
                            rtol: 1e-4, atol: 1e-4, "rfa \(label)")
                assertClose(LinearAttention()(query: q, key: k, value: v, causal: true, chunkSize: chunk), expected["elu"]!,
                            rtol: 1e-4, atol: 1e-5, "elu \(label)")
            }
        }
    }

    func testGatedScanEqualsTheDenseDecayedFormula() {
        var rfa = RandomFeatureAttention(features: 16, headDimension: 4, seed: 6)
        rfa.gate = .init(inputDimension: 3, heads: 2, seed: 7)
        for (tq, tk) in [(6, 6), (2, 7)] {
            let q = randomTensor([1, 2, tq, 4], seed: 8, requiresGrad: false)
            let k = randomTensor([1, 2, tk, 4], seed: 9, requiresGrad: false)
            let v = randomTensor([1, 2, tk, 3], seed: 10, requiresGrad: false)
            let x = randomTensor([1, 2, tk, 3], seed: 11, std: 2, requiresGrad: false)
            let expected = denseReference(rfa.features(of: q), rfa.features(of: k), v, causal: true, decay: rfa.gate!.decay(x))
            for chunk in [1, 2, 4, 64] {
                assertClose(rfa(query: q, key: k, value: v, causal: true, gateInput: x, chunkSize: chunk), expected,
                            rtol: 1e-4, atol: 1e-4, "gated Tq \(tq) Tk \(tk) chunk \(chunk)")
            }
        }
    }

    func testBidirectionalEqualsTheDenseFormula() {
        let performer = Performer(features: 10, headDimension: 4, orthogonal: false, seed: 12)
        let q = randomTensor([2, 1, 3, 4], seed: 13, requiresGrad: false), k = randomTensor([2, 1, 6, 4], seed: 14, requiresGrad: false)
        let v = randomTensor([2, 1, 6, 2], seed: 15, requiresGrad: false)
        assertClose(performer(query: q, key: k, value: v),
                    denseReference(performer.features(of: q, isQuery: true), performer.features(of: k, isQuery: false), v, causal: false),
                    rtol: 1e-4, atol: 1e-5)
        assertClose(LinearAttention()(query: q, key: k, value: v),
                    denseReference(LinearAttention.features(q), LinearAttention.features(k), v, causal: false, epsilon: 1e-6),
                    rtol: 1e-4, atol: 1e-5)
    }

    /// A decay of log 1 = 0 and input scale 1 is the ungated scan.
    func testNeutralDecayIsTheUngatedScan() {
        let fq = randomTensor([1, 2, 5, 4], seed: 16, requiresGrad: false).exp()
        let fk = randomTensor([1, 2, 5, 4], seed: 17, requiresGrad: false).exp()
        let v = randomTensor([1, 2, 5, 3], seed: 18, requiresGrad: false)
        let neutral = KernelizedAttention.Decay(logDecay: Tensor.zeros([1, 2, 5]), inputScale: Tensor.ones([1, 2, 5]))
        assertClose(KernelizedAttention.causal(queryFeatures: fq, keyFeatures: fk, value: v, chunkSize: 2, decay: neutral),
                    KernelizedAttention.causal(queryFeatures: fq, keyFeatures: fk, value: v, chunkSize: 3), rtol: 1e-5, atol: 1e-6)
    }

    /// A shut gate (g → 0) forgets everything before the current step: out_t = v_t.
    func testClosedGateReturnsTheCurrentValue() {
        var rfa = RandomFeatureAttention(features: 32, headDimension: 4, seed: 19)
        rfa.gate = .init(weight: Tensor.zeros([1, 2]), bias: Tensor([-40]))
        let q = randomTensor([1, 1, 6, 4], seed: 20, requiresGrad: false), k = randomTensor([1, 1, 6, 4], seed: 21, requiresGrad: false)
        let v = randomTensor([1, 1, 6, 3], seed: 22, requiresGrad: false)
        let out = rfa(query: q, key: k, value: v, causal: true, gateInput: Tensor.zeros([1, 1, 6, 2]), chunkSize: 4)
        assertClose(out, v, rtol: 1e-4, atol: 1e-5)
    }

    // MARK: Statistics of the approximations

    /// FAVOR+ approaches softmax attention as m grows: the mean error over
    /// seeds falls at every step of m = 16, 64, 256, 1024 and ends small.
    func testFavorErrorFallsAsFeaturesGrow() {
        let (d, t) = (16, 32)
        let q = randomTensor([1, 2, t, d], seed: 23, std: 0.5, requiresGrad: false)
        let k = randomTensor([1, 2, t, d], seed: 24, std: 0.5, requiresGrad: false)
        let v = randomTensor([1, 2, t, 8], seed: 25, requiresGrad: false)
        let exact = softmaxAttention(q, k, v, scale: 1 / Float(d).squareRoot())
        var errors: [Double] = []
        for m in [16, 64, 256, 1024] {
            let seeds: [UInt64] = Array(100..<108)
            errors.append(seeds.reduce(0.0) { sum, seed in
                sum + meanAbsoluteError(Performer(features: m, headDimension: d, seed: seed)(query: q, key: k, value: v), exact)
            } / Double(seeds.count))
        }
        for (smaller, larger) in zip(errors, errors.dropFirst()) { XCTAssertLessThan(larger, smaller, "errors \(errors)") }
        XCTAssertLessThan(errors.last!, 0.02, "errors \(errors)")
        XCTAssertLessThan(errors.last!, errors.first! / 4, "errors \(errors)")
    }

    /// Orthogonal random features have lower error than i.i.d. ones at the same
    /// m, on average over seeds (Choromanski et al., 2021, Thm. 2).
    func testOrthogonalFeaturesBeatIIDFeatures() {
        let d = 16
        let q = randomTensor([1, 2, 32, d], seed: 26, std: 0.5, requiresGrad: false)
        let k = randomTensor([1, 2, 32, d], seed: 27, std: 0.5, requiresGrad: false)
        let v = randomTensor([1, 2, 32, 8], seed: 28, requiresGrad: false)
        let exact = softmaxAttention(q, k, v, scale: 1 / Float(d).squareRoot())
        for m in [16, 64] {
            var (orthogonal, iid) = (0.0, 0.0)
            for seed in UInt64(200)..<230 {
                orthogonal += meanAbsoluteError(Performer(features: m, headDimension: d, orthogonal: true, seed: seed)(query: q, key: k, value: v), exact)
                iid += meanAbsoluteError(Performer(features: m, headDimension: d, orthogonal: false, seed: seed)(query: q, key: k, value: v), exact)
            }
            XCTAssertLessThan(orthogonal, iid, "m \(m): orthogonal \(orthogonal / 30), iid \(iid / 30)")
        }
    }

    /// RFA on unit vectors estimates softmax(q̂·k̂ᵀ/σ²) v (eq. 3–5).
    func testRFAApproachesSoftmaxOfUnitVectors() {
        let (d, sigma) = (8, Float(0.8))
        let q = randomTensor([1, 1, 16, d], seed: 29, requiresGrad: false), k = randomTensor([1, 1, 16, d], seed: 30, requiresGrad: false)
        let v = randomTensor([1, 1, 16, 4], seed: 31, requiresGrad: false)
        let unit = { (x: Tensor) in x / x.square().sum(axis: 3, keepDims: true).sqrt() }
        let exact = softmaxAttention(unit(q), unit(k), v, scale: 1 / (sigma * sigma))
        let errors = [16, 256, 4096].map { m in
            meanAbsoluteError(RandomFeatureAttention(features: m, headDimension: d, sigma: sigma, seed: 32)(query: q, key: k, value: v), exact)
        }
        XCTAssertLessThan(errors[2], errors[0], "errors \(errors)")
        XCTAssertLessThan(errors[2], 0.03, "errors \(errors)")
    }

    // MARK: Linformer

    /// With k = n and E = F = I, Linformer is full softmax attention exactly.
    func testLinformerWithIdentityProjectionsIsFullAttention() {
        let n = 6
        var identity = [Float](repeating: 0, count: n * n)
        for i in 0..<n { identity[i * n + i] = 1 }
        let q = randomTensor([2, 2, 4, 5], seed: 33, requiresGrad: false), k = randomTensor([2, 2, n, 5], seed: 34, requiresGrad: false)
        let v = randomTensor([2, 2, n, 3], seed: 35, requiresGrad: false)
        let full = Attention()(query: q, key: k, value: v).output
        let shared = Tensor(identity, shape: [n, n])
        XCTAssertEqual(Linformer(keyProjection: shared, valueProjection: shared)(query: q, key: k, value: v).scalars, full.scalars)
        let perHead = Tensor(identity + identity, shape: [2, n, n])
        XCTAssertEqual(Linformer(keyProjection: perHead, valueProjection: perHead)(query: q, key: k, value: v).scalars, full.scalars)
    }

    func testLinformerInitialisationIsSeededXavier() {
        let a = Linformer(sequenceLength: 12, projectedLength: 4, seed: 36)
        let b = Linformer(sequenceLength: 12, projectedLength: 4, seed: 36)
        XCTAssertEqual(a.keyProjection.shape, [4, 12])
        XCTAssertEqual(a.keyProjection.scalars, b.keyProjection.scalars)
        XCTAssertNotEqual(a.keyProjection.scalars, a.valueProjection.scalars)
        XCTAssertFalse(a.sharesKeyValueProjection)
        let bound = Float((3.0 / 16.0).squareRoot())
        XCTAssertTrue((a.keyProjection.scalars + a.valueProjection.scalars).allSatisfy { Swift.abs($0) <= bound })
        XCTAssertGreaterThan(a.keyProjection.scalars.map { Swift.abs($0) }.max()!, bound * 0.8)
        XCTAssertTrue(a.keyProjection.requiresGrad && a.valueProjection.requiresGrad)
        XCTAssertEqual(a.sequenceLength, 12)
        XCTAssertEqual(a.projectedLength, 4)
    }

    // MARK: Grouped-query heads

    func testGroupedQueryHeadsEqualRepeatedKeysAndValues() {
        let q = randomTensor([2, 4, 5, 6], seed: 37, requiresGrad: false)
        let k = randomTensor([2, 2, 5, 6], seed: 38, requiresGrad: false), v = randomTensor([2, 2, 5, 3], seed: 39, requiresGrad: false)
        let repeated = { (x: Tensor) in x.unsqueezed(axis: 2).expand(to: [2, 2, 2, 5, x.shape[3]]).reshaped([2, 4, 5, x.shape[3]]) }
        let performer = Performer(features: 8, headDimension: 6, seed: 40)
        var rfa = RandomFeatureAttention(features: 8, headDimension: 6, seed: 41)
        rfa.gate = .init(inputDimension: 2, heads: 4, seed: 42)
        let x = randomTensor([2, 1, 5, 2], seed: 43, requiresGrad: false)
        for causal in [false, true] {
            assertClose(performer(query: q, key: k, value: v, causal: causal, chunkSize: 2),
                        performer(query: q, key: repeated(k), value: repeated(v), causal: causal, chunkSize: 2),
                        rtol: 1e-5, atol: 1e-6, "performer causal \(causal)")
            assertClose(LinearAttention()(query: q, key: k, value: v, causal: causal, chunkSize: 2),
                        LinearAttention()(query: q, key: repeated(k), value: repeated(v), causal: causal, chunkSize: 2),
                        rtol: 1e-5, atol: 1e-6, "elu causal \(causal)")
        }
        assertClose(rfa(query: q, key: k, value: v, causal: true, gateInput: x, chunkSize: 2),
                    rfa(query: q, key: repeated(k), value: repeated(v), causal: true, gateInput: x, chunkSize: 2),
                    rtol: 1e-5, atol: 1e-5, "gated rfa")
    }

    // MARK: Random projections

    func testProjectionsAreDrawnBySeedAndRedrawn() {
        var performer = Performer(features: 20, headDimension: 8, seed: 44)
        XCTAssertEqual(performer.projection.shape, [20, 8])
        XCTAssertEqual(performer.projection.scalars, RandomProjection.orthogonalGaussian(rows: 20, columns: 8, seed: 44).scalars)
        let first = performer.projection.scalars
        performer.redraw(seed: 45)
        XCTAssertEqual(performer.seed, 45)
        XCTAssertNotEqual(performer.projection.scalars, first)
        performer.redraw(seed: 44)
        XCTAssertEqual(performer.projection.scalars, first)
        var rfa = RandomFeatureAttention(features: 6, headDimension: 3, seed: 46)
        XCTAssertEqual(rfa.projection.scalars, RandomProjection.gaussian(rows: 6, columns: 3, seed: 46).scalars)
        rfa.redraw(seed: 47)
        XCTAssertEqual(rfa.projection.scalars, Tensor.randomNormal([6, 3], seed: 47).scalars)
    }

    /// Rows of a block are orthogonal; row lengths are χ_D (mean square D).
    func testOrthogonalProjectionStructure() {
        let (m, d) = (2048, 16)
        let w = RandomProjection.orthogonalGaussian(rows: m, columns: d, seed: 48).scalars.map(Double.init)
        func row(_ i: Int) -> ArraySlice<Double> { w[(i * d)..<((i + 1) * d)] }
        func dot(_ a: ArraySlice<Double>, _ b: ArraySlice<Double>) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        var worstCosine = 0.0, acrossBlocks = 0.0
        for i in 0..<(2 * d) {
            for j in 0..<(2 * d) where j != i {
                let cosine = Swift.abs(dot(row(i), row(j))) / (dot(row(i), row(i)) * dot(row(j), row(j))).squareRoot()
                if i / d == j / d { worstCosine = Swift.max(worstCosine, cosine) } else { acrossBlocks = Swift.max(acrossBlocks, cosine) }
            }
        }
        XCTAssertLessThan(worstCosine, 1e-5)
        XCTAssertGreaterThan(acrossBlocks, 0.1, "rows of different blocks are independent, not orthogonal")
        let meanSquare = (0..<m).reduce(0.0) { $0 + dot(row($1), row($1)) } / Double(m)
        XCTAssertEqual(meanSquare, Double(d), accuracy: 0.05 * Double(d))
        // A last, partial block: m = 20 rows for D = 8 is two full blocks and 4 rows.
        XCTAssertEqual(RandomProjection.orthogonalGaussian(rows: 20, columns: 8, seed: 49).shape, [20, 8])
    }
}
