import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedAttention

/// Performer, RFA, elu+1 linear attention and Linformer against PyTorch
/// transcriptions of the papers (Tests/Fixtures/attention/make_linear_fixtures.py):
/// outputs and gradients of every input and learned parameter, with the
/// fixture's own projection matrices, for both implementations of the
/// kernelized ones (fused kernels and the composed reference); then
/// finite-difference gradient checks of the default (fused) path.
final class LinearAttentionTests: XCTestCase {
    /// A loader for one case of one family's fixture: `load("q")` is `<case>.q`.
    private struct Case {
        let file: SafeTensorsFile
        let name: String
        func callAsFunction(_ key: String, requiresGrad: Bool = false) throws -> Tensor {
            let tensor = try file.tensor("\(name).\(key)")
            tensor.requiresGrad = requiresGrad
            return tensor
        }
        func scalar(_ key: String) throws -> Float { try self(key).item() }
    }

    /// Loads the inputs named `inputs` (requiring gradients), runs `run`, and
    /// compares the output and every input's gradient with the fixture.
    private func check(_ family: String, _ name: String, inputs: [String], rtol: Float = 1e-4, atol: Float = 1e-5,
                       label: String = "", file: StaticString = #filePath, line: UInt = #line,
                       _ run: (Case, [String: Tensor]) throws -> Tensor) throws {
        let fixture = Case(file: try loadFixture("attention/linear_\(family).safetensors"), name: name)
        let tensors = try Dictionary(uniqueKeysWithValues: inputs.map { ($0, try fixture($0, requiresGrad: true)) })
        let out = try run(fixture, tensors)
        let title = "\(family) \(name)\(label)"
        assertClose(out, try fixture("out"), rtol: rtol, atol: atol, "\(title) out", file: file, line: line)
        out.backward(try fixture("seed"))
        for key in inputs {
            guard let grad = tensors[key]?.grad else { XCTFail("\(title): no gradient for \(key)", file: file, line: line); continue }
            assertClose(grad, try fixture("grad_\(key)"), rtol: rtol, atol: atol, "\(title) grad_\(key)", file: file, line: line)
        }
    }

    private let implementations: [KernelizedAttention.Implementation] = [.fused, .reference]

    // MARK: Performer (FAVOR+)

    private func checkPerformer(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for implementation in implementations {
            try check("performer", name, inputs: ["q", "k", "v"], label: " \(implementation)", file: file, line: line) { fixture, x in
                var performer = Performer(projection: try fixture("projection"))
                performer.implementation = implementation
                return performer(query: x["q"]!, key: x["k"]!, value: x["v"]!,
                                 causal: try fixture.scalar("causal") != 0, chunkSize: Int(try fixture.scalar("chunk")))
            }
        }
    }

    func testPerformerBidirectional() throws { try checkPerformer("basic") }
    func testPerformerIIDFeatures() throws { try checkPerformer("iid") }
    func testPerformerHeadDimension59() throws { try checkPerformer("headdim59") }
    func testPerformerSingleToken() throws { try checkPerformer("single") }
    func testPerformerCausalChunked() throws { try checkPerformer("causal") }
    func testPerformerCausalFewerQueriesThanKeys() throws { try checkPerformer("causalprefix") }
    func testPerformerCausalSingleToken() throws { try checkPerformer("causalsingle") }

    // MARK: Random feature attention

    private func checkRFA(_ name: String, gated: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        let inputs = ["q", "k", "v"] + (gated ? ["gate_input", "gate_weight", "gate_bias"] : [])
        for implementation in implementations {
            try check("rfa", name, inputs: inputs, rtol: 1e-4, label: " \(implementation)", file: file, line: line) { fixture, x in
                var rfa = RandomFeatureAttention(projection: try fixture("projection"), sigma: try fixture.scalar("sigma"))
                rfa.implementation = implementation
                if gated { rfa.gate = .init(weight: x["gate_weight"]!, bias: x["gate_bias"]!) }
                return rfa(query: x["q"]!, key: x["k"]!, value: x["v"]!, causal: try fixture.scalar("causal") != 0,
                           gateInput: x["gate_input"], chunkSize: Int(try fixture.scalar("chunk")))
            }
        }
    }

    func testRFABidirectional() throws { try checkRFA("basic") }
    func testRFAHeadDimension59() throws { try checkRFA("headdim59") }
    func testRFASingleToken() throws { try checkRFA("single") }
    func testRFACausal() throws { try checkRFA("causal") }
    func testRFAGatedWithGateGradients() throws { try checkRFA("gated", gated: true) }
    func testRFAGatedFewerQueriesThanKeys() throws { try checkRFA("gatedprefix", gated: true) }

    // MARK: elu+1 linear attention

    private func checkElu(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for implementation in implementations {
            try check("elu", name, inputs: ["q", "k", "v"], label: " \(implementation)", file: file, line: line) { fixture, x in
                var linear = LinearAttention()
                linear.implementation = implementation
                return linear(query: x["q"]!, key: x["k"]!, value: x["v"]!,
                              causal: try fixture.scalar("causal") != 0, chunkSize: Int(try fixture.scalar("chunk")))
            }
        }
    }

    func testEluBidirectional() throws { try checkElu("basic") }
    func testEluHeadDimension59() throws { try checkElu("headdim59") }
    func testEluSingleToken() throws { try checkElu("single") }
    func testEluCausalChunked() throws { try checkElu("causal") }
    func testEluCausalFewerQueriesThanKeys() throws { try checkElu("causalprefix") }
    func testEluCausalRecurrentChunkOfOne() throws { try checkElu("causalrnn") }

    // MARK: Linformer

    private func checkLinformer(_ name: String, shared: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        try check("linformer", name, inputs: ["q", "k", "v", "e"] + (shared ? [] : ["f"]), file: file, line: line) { _, x in
            let linformer = Linformer(keyProjection: x["e"]!, valueProjection: shared ? x["e"]! : x["f"]!)
            return linformer(query: x["q"]!, key: x["k"]!, value: x["v"]!)
        }
    }

    func testLinformerSeparateProjections() throws { try checkLinformer("separate") }
    func testLinformerSharedKeyValueProjection() throws { try checkLinformer("shared", shared: true) }
    func testLinformerPerHeadProjections() throws { try checkLinformer("perhead") }
    func testLinformerHeadDimension59() throws { try checkLinformer("headdim59") }
    func testLinformerSingleToken() throws { try checkLinformer("single") }

    // MARK: Finite differences

    func testPerformerGradientsByFiniteDifferences() {
        let performer = Performer(features: 6, headDimension: 3, orthogonal: true, seed: 3)
        for causal in [false, true] {
            let (q, k, v) = (randomTensor([1, 2, 4, 3], seed: 1, std: 0.7), randomTensor([1, 2, 4, 3], seed: 2, std: 0.7),
                             randomTensor([1, 2, 4, 2], seed: 3))
            assertGradients([q, k, v], "performer causal \(causal)") { x in
                performer(query: x[0], key: x[1], value: x[2], causal: causal, chunkSize: 3)
            }
        }
    }

    func testRFAGradientsByFiniteDifferences() {
        let rfa = RandomFeatureAttention(features: 8, headDimension: 3, sigma: 1.5, seed: 5)
        let (q, k, v) = (randomTensor([1, 2, 3, 3], seed: 4), randomTensor([1, 2, 4, 3], seed: 5), randomTensor([1, 2, 4, 2], seed: 6))
        assertGradients([q, k, v], "rfa bidirectional") { x in rfa(query: x[0], key: x[1], value: x[2]) }
    }

    func testGatedRFAGradientsByFiniteDifferences() {
        let rfa = RandomFeatureAttention(features: 8, headDimension: 3, sigma: 1.5, seed: 5)
        let (q, k, v) = (randomTensor([1, 2, 4, 3], seed: 7), randomTensor([1, 2, 5, 3], seed: 8), randomTensor([1, 2, 5, 2], seed: 9))
        let gateInput = randomTensor([1, 1, 5, 2], seed: 10)
        let weight = randomTensor([2, 2], seed: 11, std: 0.5)
        let bias = Tensor([0.5, 1.5], requiresGrad: true)
        assertGradients([q, k, v, gateInput, weight, bias], "gated rfa") { x in
            var gated = rfa
            gated.gate = .init(weight: x[4], bias: x[5])
            return gated(query: x[0], key: x[1], value: x[2], causal: true, gateInput: x[3], chunkSize: 2)
        }
    }

    func testEluLinearAttentionGradientsByFiniteDifferences() {
        for causal in [false, true] {
            let (q, k, v) = (randomAwayFromZero([2, 1, 4, 3], seed: 12), randomAwayFromZero([2, 1, 5, 3], seed: 13),
                             randomTensor([2, 1, 5, 2], seed: 14))
            assertGradients([q, k, v], "elu causal \(causal)") { x in
                LinearAttention()(query: x[0], key: x[1], value: x[2], causal: causal, chunkSize: 2)
            }
        }
    }

    func testLinformerGradientsByFiniteDifferences() {
        let linformer = Linformer(sequenceLength: 5, projectedLength: 3, seed: 15)
        let (q, k, v) = (randomTensor([1, 2, 3, 4], seed: 16), randomTensor([1, 2, 5, 4], seed: 17), randomTensor([1, 2, 5, 2], seed: 18))
        assertGradients([q, k, v, linformer.keyProjection, linformer.valueProjection], "linformer") { x in
            Linformer(keyProjection: x[3], valueProjection: x[4])(query: x[0], key: x[1], value: x[2])
        }
        let shared = Linformer(sequenceLength: 5, projectedLength: 2, heads: 2, sharesKeyValueProjection: true, seed: 19)
        XCTAssertTrue(shared.sharesKeyValueProjection)
        assertGradients([q, k, v, shared.keyProjection], "linformer shared per head") { x in
            Linformer(keyProjection: x[3], valueProjection: x[3])(query: x[0], key: x[1], value: x[2])
        }
    }
}
