import Foundation
import XCTest
import HeedTestSupport
import HeedTensor
@testable import HeedAttention

/// Hard attention: argmax and sampled normalizers, the REINFORCE estimator
/// (unbiased, and it trains), the moving-average baseline.
final class HardAttentionTests: XCTestCase {
    // MARK: Argmax

    func testArgmaxIsOneHotFirstOnTiesAndHasNoGradient() {
        let inf = -Float.infinity
        let scores = Tensor([1, 3, 3, 0,      // tie → the first (index 1)
                             5, 2, 4, 4,      // the max is masked → the best allowed (index 2)
                             inf, 1, inf, 0], // −inf scores are never chosen
                            shape: [3, 4], requiresGrad: true)
        let mask = Tensor([1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1], shape: [3, 4])
        let weights = Normalizer.hardArgmax(scores, mask: mask).weights
        XCTAssertEqual(weights.scalars, [0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0])
        XCTAssertFalse(weights.requiresGrad, "argmax passes no gradient to the scores")
        XCTAssertNil(Normalizer.hardArgmax(scores, mask: mask).logProbability)
        XCTAssertTrue(Normalizer.hardArgmax(Tensor([1, .nan]), mask: nil).weights.scalars.allSatisfy { $0.isNaN })
    }

    // MARK: Sampling

    /// The empirical frequencies of many independent draws approach the softmax.
    func testSampledFrequenciesFollowTheSoftmax() {
        let rows = 40_000
        let base = Tensor([0.5, -1, 2, 0, 1, 0.3])
        let mask = Tensor([1, 1, 1, 0, 1, 1])
        let scores = base.expand(to: [rows, 6])                                        // [N, 6]
        let weights = Normalizer.hardSampled(seed: 7)(scores, mask: mask).weights
        let counts = weights.sum(axis: 0).scalars
        let p = Normalizer.softmax(base, mask: mask).weights.scalars
        XCTAssertEqual(counts[3], 0, "a masked key is never drawn")
        XCTAssertEqual(weights.sum(axis: -1).scalars, [Float](repeating: 1, count: rows), "one key per query")
        for j in 0..<6 where p[j] > 0 {
            let frequency = Double(counts[j]) / Double(rows)
            let standardError = (Double(p[j]) * (1 - Double(p[j])) / Double(rows)).squareRoot()
            XCTAssertEqual(frequency, Double(p[j]), accuracy: 5 * standardError, "key \(j)")
        }
    }

    func testSampledIsReproducibleAndSeedDependent() {
        let scores = randomTensor([4, 3, 9], seed: 60, requiresGrad: false)
        let first = Normalizer.hardSampled(seed: 1)(scores, mask: nil).weights.scalars
        XCTAssertEqual(first, Normalizer.hardSampled(seed: 1)(scores, mask: nil).weights.scalars)
        XCTAssertNotEqual(first, Normalizer.hardSampled(seed: 2)(scores, mask: nil).weights.scalars)
    }

    /// log p(a) is the log-softmax at the drawn key; its gradient is 1[j = a] − p_j.
    func testLogProbabilityAndItsGradient() {
        let scores = randomTensor([2, 3, 7], seed: 61)
        let mask = Tensor.randomUniform([2, 1, 7], seed: 62).greater(Tensor(scalar: 0.3))
        let result = Normalizer.hardSampled(seed: 5)(scores, mask: mask)
        let logProbability = result.logProbability!
        XCTAssertEqual(logProbability.shape, [2, 3])
        let p = Normalizer.softmax(scores.detached(), mask: mask).weights
        let expected = (p.log().maskedFill(1 - result.weights, 0) * result.weights).sum(axis: -1)
        assertClose(logProbability, expected, rtol: 1e-5, atol: 1e-6)

        let upstream = Tensor.randomNormal([2, 3], seed: 63)
        logProbability.backward(upstream)
        let closedForm = (result.weights - p) * upstream.unsqueezed(axis: -1)             // [2, 3, 7]
        assertClose(scores.grad!, closedForm, rtol: 1e-5, atol: 1e-6)

        // And by finite differences (the draw stays fixed for these small steps).
        let fresh = randomTensor([2, 3, 7], seed: 61)
        assertGradients([fresh], relativeStep: 1e-3) { Normalizer.hardSampled(seed: 5)($0[0], mask: mask).logProbability! }
    }

    // MARK: REINFORCE

    func testReinforceLossFormula() {
        let logProbability = Tensor([-0.5, -1, -2, -0.1], shape: [2, 2], requiresGrad: true)
        let reward = Tensor([1, 0, 2, 1], shape: [2, 2], requiresGrad: true)
        let loss = HardAttention.reinforceLoss(logProbability: logProbability, reward: reward, baseline: 0.5)
        // −mean((r − b)·logp) = −(0.5·−0.5 + −0.5·−1 + 1.5·−2 + 0.5·−0.1)/4
        XCTAssertEqual(loss.item(), -(-0.25 + 0.5 - 3 - 0.05) / 4, accuracy: 1e-6)
        loss.backward()
        assertClose(logProbability.grad!.scalars, [-0.125, 0.125, -0.375, -0.125], rtol: 0, atol: 1e-7)
        XCTAssertNil(reward.grad, "the reward is detached")
    }

    /// Averaged over many draws, the REINFORCE gradient equals the exact gradient
    /// of the expected reward, ∂E[r]/∂s_k = p_k (r_k − E[r]), with or without a baseline.
    func testReinforceGradientIsUnbiased() {
        let rows = 50_000
        let rewards = Tensor([1.0, 0.2, -0.5, 0.6])                                     // r(a) for a = 0…3
        for baseline: Float in [0, 0.4] {
            let logits = Tensor([0.2, 0.5, -0.3, 0.1], requiresGrad: true)
            let scores = logits.expand(to: [rows, 4])                                  // [N, 4]
            let result = Normalizer.hardSampled(seed: 99)(scores, mask: nil)
            let reward = result.weights.matmul(rewards.unsqueezed(axis: -1)).squeezed(axis: -1)   // r(a_n)  [N]
            HardAttention.reinforceLoss(logProbability: result.logProbability!, reward: reward, baseline: baseline).backward()
            let estimate = logits.grad!.scalars.map { -Double($0) }                        // ascent direction

            let p = logits.detached().softmax().scalars.map(Double.init), r = rewards.scalars.map(Double.init)
            let expected = zip(p, r).reduce(0) { $0 + $1.0 * $1.1 }
            let exact = (0..<4).map { p[$0] * (r[$0] - expected) }
            // Each term (r − b)(1[a = k] − p_k) has standard deviation below 0.5: the mean of N has ≈ 0.002.
            for k in 0..<4 {
                XCTAssertEqual(estimate[k], exact[k], accuracy: 0.01, "baseline \(baseline), key \(k)")
            }
            XCTAssertGreaterThan(exact.map(Swift.abs).max()!, 0.1, "a gradient worth estimating")
        }
    }

    func testMovingAverageBaseline() {
        var baseline = MovingAverageBaseline(decay: 0.9)
        XCTAssertEqual(baseline.value, 0)
        baseline.update(with: Tensor([1, 3]))                                         // mean 2
        XCTAssertEqual(baseline.value, 0.2, accuracy: 1e-6)
        baseline.update(with: 2)
        XCTAssertEqual(baseline.value, 0.38, accuracy: 1e-6)
        XCTAssertEqual(baseline.updates, 2)
        for _ in 0..<200 { baseline.update(with: 2) }
        XCTAssertEqual(baseline.value, 2, accuracy: 1e-4)
    }

    /// A toy task that only REINFORCE can solve: in each sequence one key (at a
    /// random position) carries a marker direction and holds the value 1; the
    /// others hold 0. A learned query attends with sampled hard attention, and
    /// the reward is the value it reads. Plain SGD on the REINFORCE loss must
    /// drive the expected reward from 1/T to near 1.
    func testReinforceTrainsHardAttentionToFindTheTarget() {
        let (batch, keys, dimension) = (32, 6, 8)
        let marker = Tensor.randomNormal([dimension], seed: 70) * (5 / Float(dimension).squareRoot())
        let query = Tensor.zeros([1, 1, 1, dimension], requiresGrad: true)
        let attention = { (seed: UInt64) in Attention(normalizer: .hardSampled(seed: seed)) }

        func episode(_ seed: UInt64) -> (keys: Tensor, values: Tensor, targets: [Int]) {
            var generator = RandomGenerator(seed: seed)
            let targets = (0..<batch).map { _ in generator.nextInt(below: keys) }
            let oneHot = IndexTensor(targets, shape: [batch, 1, 1]).oneHot(numClasses: keys)          // [B, 1, 1, T]
            let values = oneHot.reshaped([batch, 1, keys, 1])                                          // [B, 1, T, 1]
            let noise = Tensor.randomNormal([batch, 1, keys, dimension], generator: &generator)
            return (noise + values * marker, values, targets)                                          // keys [B, 1, T, D]
        }

        /// E[reward] exactly: the softmax probability of the target, averaged.
        func expectedReward() -> Float {
            let (k, v, _) = episode(12345)
            return Tensor.withoutGrad {
                let scores = query.expand(to: [batch, 1, 1, dimension]).matmul(k.transposed())
                    * (1 / Float(dimension).squareRoot())                                               // [B, 1, 1, T]
                return scores.softmax(axis: -1).matmul(v).mean().item()
            }
        }

        let before = expectedReward()
        var baseline = MovingAverageBaseline(decay: 0.9)
        let learningRate: Float = 2
        for step in 0..<300 {
            let (k, v, _) = episode(UInt64(1000 + step))
            let result = attention(UInt64(step))(query: query.expand(to: [batch, 1, 1, dimension]), key: k, value: v)
            let reward = result.output.reshaped([batch, 1, 1])                                         // 1 if the target was read
            let loss = HardAttention.reinforceLoss(logProbability: result.logProbability!, reward: reward,
                                                   baseline: baseline.value)
            query.grad = nil
            loss.backward()
            baseline.update(with: reward)
            Tensor.withoutGrad {
                query.withUnsafeMutableScalars { q in
                    query.grad!.withUnsafeScalars { g in for i in q.indices { q[i] -= learningRate * g[i] } }
                }
            }
        }
        let after = expectedReward()
        XCTAssertEqual(before, 1 / Float(keys), accuracy: 1e-5, "a zero query attends uniformly")
        XCTAssertGreaterThan(after, 0.85, "expected reward after training (before: \(before))")
        XCTAssertGreaterThan(baseline.value, 0.7, "the running reward rose too")
    }
}
