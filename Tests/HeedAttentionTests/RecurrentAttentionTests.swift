import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedAttention

/// Bahdanau and Luong (global, local-m, local-p) layers against the PyTorch
/// transcriptions in Tests/Fixtures/attention/make_recurrent_fixtures.py,
/// plus the edge cases those layers document.
final class RecurrentAttentionTests: XCTestCase {
    // MARK: - Fixtures

    /// Loads `recurrent_<name>.safetensors`, rebuilds the layer from its
    /// stored parameters, runs it with gradients on every input and
    /// parameter, and compares outputs and gradients with PyTorch's.
    private func checkFixture(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let fixture = try loadFixture("attention/recurrent_\(name).safetensors")
        let config = fixture.metadata
        var leaves: [String: Tensor] = [:]
        func leaf(_ key: String) throws -> Tensor {
            let t = try fixture.tensor(key)
            t.requiresGrad = true
            leaves[key] = t
            return t
        }
        let state = try leaf("state"), encoderOutputs = try leaf("encoder_outputs")
        let lengths = try fixture.tensor("lengths").scalars.map { Int($0) }

        let output: RecurrentAttentionOutput
        switch config["layer"] {
        case "bahdanau":
            let layer = BahdanauAttention(stateWeight: try leaf("state_weight"), encoderWeight: try leaf("encoder_weight"),
                                          vector: try leaf("vector"))
            output = layer(state: state, encoderOutputs: encoderOutputs, sourceLengths: lengths)
        case "luong":
            let scoring: LuongAttention.Scoring
            switch config["score"] {
            case "dot": scoring = .dot
            case "general": scoring = .general(weight: try leaf("score_weight"))
            case "concat": scoring = .concat(weight: try leaf("score_weight"), vector: try leaf("score_vector"))
            default: return XCTFail("unknown score \(config["score"] ?? "nil")", file: file, line: line)
            }
            let halfWidth = Int(config["half_width"] ?? "0") ?? 0
            let window: LuongAttention.Window
            switch config["window"] {
            case "global": window = .global
            case "monotonic": window = .monotonic(halfWidth: halfWidth)
            case "predictive":
                window = .predictive(halfWidth: halfWidth, weight: try leaf("position_weight"), vector: try leaf("position_vector"))
            default: return XCTFail("unknown window \(config["window"] ?? "nil")", file: file, line: line)
            }
            let outputWeight = fixture.contains("output_weight") ? try leaf("output_weight") : nil
            let layer = LuongAttention(decoderSize: state.shape.last!, encoderSize: encoderOutputs.shape.last!, scoring: scoring,
                                       window: window, outputWeight: outputWeight)
            output = layer(state: state, encoderOutputs: encoderOutputs, sourceLengths: lengths,
                           stepOffset: Int(config["step_offset"] ?? "0") ?? 0)
        default:
            return XCTFail("unknown layer \(config["layer"] ?? "nil")", file: file, line: line)
        }

        // Outputs, and the loss Σ seed ⊙ output over every output the fixture has.
        var produced: [String: Tensor] = ["context": output.context, "weights": output.weights]
        produced["attentional_state"] = output.attentionalState
        produced["aligned_position"] = output.alignedPosition
        var loss = Tensor(scalar: 0)
        for key in ["context", "weights", "attentional_state", "aligned_position"] where fixture.contains(key) {
            guard let actual = produced[key] else { return XCTFail("\(name): layer gave no \(key)", file: file, line: line) }
            assertClose(actual, try fixture.tensor(key), rtol: 1e-4, atol: 1e-5, "\(name) \(key)", file: file, line: line)
            loss = loss + (actual * (try fixture.tensor("seed_\(key)"))).sum()
        }
        XCTAssertEqual(produced["attentional_state"] != nil, fixture.contains("attentional_state"), name, file: file, line: line)
        XCTAssertEqual(produced["aligned_position"] != nil, fixture.contains("aligned_position"), name, file: file, line: line)

        // Gradients w.r.t. the decoder state, the encoder outputs and every parameter.
        loss.backward()
        for (key, tensor) in leaves {
            let expected = try fixture.tensor("grad_\(key)")
            let actual = tensor.grad ?? Tensor.zeros(tensor.shape)
            assertClose(actual, expected, rtol: 1e-4, atol: 1e-5, "\(name) grad \(key)", file: file, line: line)
        }
        XCTAssertEqual(Set(leaves.keys), Set(fixture.names.filter { $0.hasPrefix("grad_") }.map { String($0.dropFirst(5)) }),
                       "\(name): every stored gradient is checked", file: file, line: line)
    }

    func testBahdanauPaddedFixture() throws { try checkFixture("bahdanau_padded") }
    func testBahdanauSingleSourcePositionFixture() throws { try checkFixture("bahdanau_t1") }
    func testBahdanauLongSourceFixture() throws { try checkFixture("bahdanau_t59") }
    func testLuongDotFixture() throws { try checkFixture("luong_dot") }
    func testLuongGeneralSeveralStepsFixture() throws { try checkFixture("luong_general_t59") }
    func testLuongConcatFixture() throws { try checkFixture("luong_concat") }
    func testLuongConcatSingleSourcePositionFixture() throws { try checkFixture("luong_concat_t1") }
    func testLuongLocalPredictiveFixture() throws { try checkFixture("luong_local_p") }
    func testLuongLocalPredictiveSingleSourcePositionFixture() throws { try checkFixture("luong_local_p_t1") }
    func testLuongLocalMonotonicFixture() throws { try checkFixture("luong_local_m") }

    // MARK: - Edge cases

    func testAllPaddedRowGivesZerosAndZeroGradientWithoutNaN() {
        let state = randomTensor([2, 3], seed: 1), encoderOutputs = randomTensor([2, 4, 5], seed: 2)
        let layers: [(String, (Tensor, Tensor) -> RecurrentAttentionOutput)] = [
            ("bahdanau", { BahdanauAttention(decoderSize: 3, encoderSize: 5, attentionSize: 4, seed: 3)(state: $0, encoderOutputs: $1, sourceLengths: [4, 0]) }),
            ("luong concat", { LuongAttention(decoderSize: 3, encoderSize: 5, score: .concat, outputSize: 2, seed: 4)(state: $0, encoderOutputs: $1, sourceLengths: [4, 0]) }),
            ("luong local-p", { LuongAttention(decoderSize: 3, encoderSize: 5, window: .predictive(halfWidth: 1), seed: 5)(state: $0, encoderOutputs: $1, sourceLengths: [4, 0]) }),
        ]
        for (name, run) in layers {
            state.grad = nil
            encoderOutputs.grad = nil
            let output = run(state, encoderOutputs)
            XCTAssertEqual(output.context.shape, [2, 5], name)
            XCTAssertEqual(output.weights.shape, [2, 4], name)
            XCTAssertFalse(output.context.scalars.contains { $0.isNaN } || output.weights.scalars.contains { $0.isNaN }, name)
            XCTAssertEqual(Array(output.context.scalars[5...]), [Float](repeating: 0, count: 5), name)
            XCTAssertEqual(Array(output.weights.scalars[4...]), [0, 0, 0, 0], name)
            XCTAssertGreaterThan(output.weights.scalars[..<4].reduce(0, +), 0.1, "\(name): the unpadded row attends")
            (output.context.sum() + output.weights.sum()).backward()
            let stateGradient = state.grad!.scalars, encoderGradient = encoderOutputs.grad!.scalars
            XCTAssertFalse(stateGradient.contains { $0.isNaN } || encoderGradient.contains { $0.isNaN }, name)
            XCTAssertEqual(Array(stateGradient[3...]), [0, 0, 0], "\(name): no gradient to the padded row's state")
            XCTAssertEqual(Array(encoderGradient[20...]), [Float](repeating: 0, count: 20), "\(name): none to its encoder outputs")
            XCTAssertTrue(stateGradient[..<3].contains { $0 != 0 }, "\(name): the live row gets gradient")
        }
    }

    func testSourceMaskAgreesWithLengthsAndIntersects() {
        let layer = BahdanauAttention(decoderSize: 3, encoderSize: 4, attentionSize: 5, seed: 7)
        let state = randomTensor([2, 3], seed: 8, requiresGrad: false), encoderOutputs = randomTensor([2, 5, 4], seed: 9, requiresGrad: false)
        let byLength = layer(state: state, encoderOutputs: encoderOutputs, sourceLengths: [5, 2])
        let mask = Tensor([1, 1, 1, 1, 1, 1, 1, 0, 0, 0], shape: [2, 5])
        let byMask = layer(state: state, encoderOutputs: encoderOutputs, sourceMask: mask)
        assertClose(byMask.weights, byLength.weights)
        assertClose(byMask.context, byLength.context)
        // A hole in the middle of row 0, intersected with lengths [5, 2].
        let holes = Tensor([1, 0, 1, 1, 1, 1, 1, 1, 1, 1], shape: [2, 5])
        let both = layer(state: state, encoderOutputs: encoderOutputs, sourceLengths: [5, 2], sourceMask: holes).weights.scalars
        XCTAssertEqual(both[1], 0)
        XCTAssertEqual(Array(both[7...]), [0, 0, 0])
        XCTAssertEqual(both[0..<5].reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertEqual(both[5..<10].reduce(0, +), 1, accuracy: 1e-6)
    }

    func testSeveralStepsEqualOneStepAtATime() {
        let encoderOutputs = randomTensor([2, 9, 4], seed: 11, requiresGrad: false)
        let states = randomTensor([2, 3, 5], seed: 12, requiresGrad: false)
        let layers: [(String, LuongAttention)] = [
            ("general", LuongAttention(decoderSize: 5, encoderSize: 4, score: .general, outputSize: 3, seed: 13)),
            ("local-m", LuongAttention(decoderSize: 5, encoderSize: 4, score: .concat, window: .monotonic(halfWidth: 2), seed: 14)),
            ("local-p", LuongAttention(decoderSize: 5, encoderSize: 4, window: .predictive(halfWidth: 2), outputSize: 3, seed: 15)),
        ]
        for (name, layer) in layers {
            let all = layer(state: states, encoderOutputs: encoderOutputs, sourceLengths: [9, 6], stepOffset: 4)
            for step in 0..<3 {
                let one = layer(state: states.sliced(axis: 1, range: step..<(step + 1)).squeezed(axis: 1), encoderOutputs: encoderOutputs,
                                sourceLengths: [9, 6], stepOffset: 4 + step)
                assertClose(one.context, all.context.sliced(axis: 1, range: step..<(step + 1)).squeezed(axis: 1), rtol: 1e-5, atol: 1e-6, name)
                assertClose(one.weights, all.weights.sliced(axis: 1, range: step..<(step + 1)).squeezed(axis: 1), rtol: 1e-5, atol: 1e-6, name)
                if let h = one.attentionalState, let hs = all.attentionalState {
                    assertClose(h, hs.sliced(axis: 1, range: step..<(step + 1)).squeezed(axis: 1), rtol: 1e-5, atol: 1e-6, name)
                }
            }
        }
    }

    func testLocalWindowCentresOnNearestPositionAndClips() {
        let mask = LuongAttention.windowMask(centres: [2.49, 2.5, 0.2, 6.6, 9], rows: 5, sourceLength: 7, halfWidth: 1).scalars
        let rows = (0..<5).map { Array(mask[($0 * 7)..<($0 * 7 + 7)]) }
        XCTAssertEqual(rows[0], [0, 1, 1, 1, 0, 0, 0])   // round(2.49) = 2
        XCTAssertEqual(rows[1], [0, 0, 1, 1, 1, 0, 0])   // round(2.5) = 3 (half up)
        XCTAssertEqual(rows[2], [1, 1, 0, 0, 0, 0, 0])   // clipped at the start
        XCTAssertEqual(rows[3], [0, 0, 0, 0, 0, 0, 1])   // round(6.6) = 7: window 6...8 clipped to 6
        XCTAssertEqual(rows[4], [0, 0, 0, 0, 0, 0, 0])   // past the source: nothing
    }

    func testLocalWeightsAreWindowSoftmaxTimesGaussian() {
        // Dot score, local-m at t = 3 with D = 2 over 8 positions: the weights
        // are softmax(h̄_s · h_t) over s ∈ 1...5 times exp(−(s − 3)²/2) (σ = 1).
        let state = randomTensor([1, 4], seed: 21, requiresGrad: false), encoderOutputs = randomTensor([1, 8, 4], seed: 22, requiresGrad: false)
        let layer = LuongAttention(decoderSize: 4, encoderSize: 4, scoring: .dot, window: .monotonic(halfWidth: 2))
        let weights = layer(state: state, encoderOutputs: encoderOutputs, stepOffset: 3).weights.scalars
        let h = state.scalars, source = encoderOutputs.scalars
        let scores = (1...5).map { s in (0..<4).reduce(Float(0)) { $0 + h[$1] * source[s * 4 + $1] } }
        let top = scores.max()!, total = scores.reduce(Float(0)) { $0 + Foundation.exp($1 - top) }
        for s in 0..<8 {
            let expected: Float = (1...5).contains(s)
                ? Foundation.exp(scores[s - 1] - top) / total * Foundation.exp(-Float((s - 3) * (s - 3)) / 2) : 0
            XCTAssertEqual(weights[s], expected, accuracy: 1e-6, "position \(s)")
        }
        XCTAssertLessThan(weights.reduce(0, +), 1, "the Gaussian shrinks the normalised alignment (eq. 10)")
    }

    func testSeededInitialisationIsDeterministicBoundedAndTrainable() {
        let a = BahdanauAttention(decoderSize: 4, encoderSize: 9, attentionSize: 16, seed: 42)
        let b = BahdanauAttention(decoderSize: 4, encoderSize: 9, attentionSize: 16, seed: 42)
        let c = BahdanauAttention(decoderSize: 4, encoderSize: 9, attentionSize: 16, seed: 43)
        XCTAssertEqual(a.parameters.map(\.scalars), b.parameters.map(\.scalars))
        XCTAssertNotEqual(a.parameters[0].scalars, c.parameters[0].scalars)
        for (parameter, fanIn) in zip(a.parameters, [4, 9, 16]) {
            XCTAssertTrue(parameter.requiresGrad)
            let bound = 1 / Float(fanIn).squareRoot()
            XCTAssertLessThanOrEqual(parameter.scalars.map(Swift.abs).max()!, bound)
            XCTAssertGreaterThan(parameter.scalars.map(Swift.abs).max()!, 0.8 * bound, "fills the range")
        }
        let luong = LuongAttention(decoderSize: 4, encoderSize: 6, score: .concat, window: .predictive(halfWidth: 3),
                                   attentionSize: 5, outputSize: 7, seed: 1)
        XCTAssertEqual(luong.parameters.map(\.shape), [[10, 5], [5], [4, 5], [5], [10, 7]])
        XCTAssertTrue(luong.parameters.allSatisfy(\.requiresGrad))
    }

    // MARK: - Finite differences

    /// Every output of a layer, flattened into one vector.
    private func flattened(_ output: RecurrentAttentionOutput) -> Tensor {
        let parts = [output.context, output.weights, output.attentionalState, output.alignedPosition].compactMap { $0 }
        return Tensor.concatenate(parts.map { $0.reshaped([$0.count]) }, axis: 0)
    }

    func testBahdanauFiniteDifferences() {
        let layer = BahdanauAttention(decoderSize: 2, encoderSize: 3, attentionSize: 2, seed: 31)
        let inputs = [randomTensor([2, 2], seed: 32), randomTensor([2, 3, 3], seed: 33)] + layer.parameters
        assertGradients(inputs, "bahdanau") { xs in
            let layer = BahdanauAttention(stateWeight: xs[2], encoderWeight: xs[3], vector: xs[4])
            return self.flattened(layer(state: xs[0], encoderOutputs: xs[1], sourceLengths: [3, 2]))
        }
    }

    func testLuongGlobalFiniteDifferences() {
        for kind in [LuongAttention.Scoring.Kind.dot, .general, .concat] {
            let layer = LuongAttention(decoderSize: 3, encoderSize: 3, score: kind, attentionSize: 2, outputSize: 2, seed: 41)
            let inputs = [randomTensor([2, 2, 3], seed: 42), randomTensor([2, 3, 3], seed: 43)] + layer.parameters
            assertGradients(inputs, "luong \(kind)") { xs in
                let scoring: LuongAttention.Scoring
                switch kind {
                case .dot: scoring = .dot
                case .general: scoring = .general(weight: xs[2])
                case .concat: scoring = .concat(weight: xs[2], vector: xs[3])
                }
                let layer = LuongAttention(decoderSize: 3, encoderSize: 3, scoring: scoring, outputWeight: xs.last!)
                return self.flattened(layer(state: xs[0], encoderOutputs: xs[1], sourceLengths: [3, 1]))
            }
        }
    }

    func testLuongLocalMonotonicFiniteDifferences() {
        let layer = LuongAttention(decoderSize: 2, encoderSize: 3, score: .concat, window: .monotonic(halfWidth: 1),
                                   attentionSize: 2, outputSize: 2, seed: 51)
        let inputs = [randomTensor([2, 3, 2], seed: 52), randomTensor([2, 4, 3], seed: 53)] + layer.parameters
        assertGradients(inputs, "local-m") { xs in
            let layer = LuongAttention(decoderSize: 2, encoderSize: 3, scoring: .concat(weight: xs[2], vector: xs[3]),
                                       window: .monotonic(halfWidth: 1), outputWeight: xs[4])
            return self.flattened(layer(state: xs[0], encoderOutputs: xs[1], sourceLengths: [4, 2], stepOffset: 1))
        }
    }

    func testLuongLocalPredictiveFiniteDifferencesReachThePosition() {
        let layer = LuongAttention(decoderSize: 3, encoderSize: 2, score: .general, window: .predictive(halfWidth: 2),
                                   attentionSize: 3, outputSize: 2, seed: 64)
        let inputs = [randomTensor([2, 2, 3], seed: 62), randomTensor([2, 6, 2], seed: 63)] + layer.parameters
        func run(_ xs: [Tensor]) -> RecurrentAttentionOutput {
            let layer = LuongAttention(decoderSize: 3, encoderSize: 2, scoring: .general(weight: xs[2]),
                                       window: .predictive(halfWidth: 2, weight: xs[3], vector: xs[4]), outputWeight: xs[5])
            return layer(state: xs[0], encoderOutputs: xs[1], sourceLengths: [6, 4])
        }
        // The window is piecewise constant in p_t: finite differences are only
        // meaningful while no perturbation moves a centre across a rounding
        // tie. With these seeds every p_t stays ≥ 0.1 from a tie (checked).
        let positions = Tensor.withoutGrad { run(inputs).alignedPosition!.scalars }
        for p in positions {
            let fraction = (p + 0.5) - (p + 0.5).rounded(.down)
            XCTAssertTrue(fraction > 0.1 && fraction < 0.9, "p_t = \(p) is too close to a window tie for this check")
        }
        assertGradients(inputs, "local-p") { xs in self.flattened(run(xs)) }
        // The Gaussian carries gradient to W_p and v_p.
        let output = run(inputs)
        output.weights.sum().backward()
        XCTAssertGreaterThan(inputs[3].grad!.scalars.map(Swift.abs).max()!, 1e-4, "W_p gets gradient through p_t")
        XCTAssertGreaterThan(inputs[4].grad!.scalars.map(Swift.abs).max()!, 1e-4, "v_p gets gradient through p_t")
    }

    // MARK: - Training

    /// A Bahdanau layer learns to retrieve the encoder vector at the position
    /// named in the decoder state: encoder output j is [one-hot(j); content_j],
    /// the state is one-hot(k), and the loss is ‖c − h_k‖² averaged over the batch.
    func testBahdanauTrainingRetrievesTheNamedPosition() {
        let (batch, length, contentSize) = (32, 6, 4)
        var generator = RandomGenerator(seed: 71)
        var targets: [Int] = [], encoderValues: [Float] = [], stateValues: [Float] = []
        for _ in 0..<batch {
            let k = generator.nextInt(below: length)
            targets.append(k)
            stateValues += (0..<length).map { Float($0 == k ? 1 : 0) }
            for j in 0..<length {
                encoderValues += (0..<length).map { Float($0 == j ? 1 : 0) } + (0..<contentSize).map { _ in generator.nextNormal() }
            }
        }
        let encoderSize = length + contentSize
        let state = Tensor(stateValues, shape: [batch, length])
        let encoderOutputs = Tensor(encoderValues, shape: [batch, length, encoderSize])
        var targetValues: [Float] = []
        for b in 0..<batch {
            let start: Int = (b * length + targets[b]) * encoderSize
            targetValues += encoderValues[start..<(start + encoderSize)]
        }
        let target = Tensor(targetValues, shape: [batch, encoderSize])

        let layer = BahdanauAttention(decoderSize: length, encoderSize: encoderSize, attentionSize: 8, seed: 72)
        func step() -> (loss: Float, weightOnTarget: Float) {
            let output = layer(state: state, encoderOutputs: encoderOutputs)
            let loss = (output.context - target).square().sum() * (1 / Float(batch))
            let weights = output.weights.scalars
            let onTarget = (0..<batch).reduce(Float(0)) { $0 + weights[$1 * length + targets[$1]] } / Float(batch)
            loss.backward()
            for parameter in layer.parameters {
                let gradient = parameter.grad!.scalars
                parameter.withUnsafeMutableScalars { values in for i in values.indices { values[i] -= 0.1 * gradient[i] } }
                parameter.grad = nil
            }
            return (loss.item(), onTarget)
        }
        let first = step()
        var last = first
        // Plain SGD at 0.1 descends monotonically here; at 0.5 (earlier) the
        // loss oscillated, and where step 60 landed depended on the CPU's BLAS
        // kernels (it passed on Zen 3 and failed on Zen 4).
        for _ in 0..<399 { last = step() }
        XCTAssertLessThan(last.loss, 0.25 * first.loss, "loss \(first.loss) → \(last.loss)")
        XCTAssertGreaterThan(last.weightOnTarget, 0.6, "mean weight on the named position \(first.weightOnTarget) → \(last.weightOnTarget)")
        XCTAssertLessThan(first.weightOnTarget, 0.3, "starts near uniform")
    }
}
