import Foundation
import HeedTensor

/// How the next token is chosen from the logits, in the order Hugging Face's
/// `generate` applies its logits processors:
///
/// ```
/// 1. repetition penalty ρ:  ℓ_t ← ℓ_t / ρ if ℓ_t > 0 else ℓ_t · ρ   for every t already in the sequence
/// 2. temperature τ:         ℓ ← ℓ / τ                     (τ = 0: greedy, argmax of step 1)
/// 3. top-k:                 keep the k largest ℓ
/// 4. top-p (nucleus):       keep the smallest set of most likely tokens whose probability reaches p
/// 5. sample from softmax(ℓ) over what is kept, with a Philox generator seeded by `seed`
/// ```
///
/// Greedy decoding (τ = 0) ignores steps 3–5, so it is deterministic and equals
/// `generate(do_sample=False)`. Ties in argmax go to the lowest id.
public struct Sampling: Sendable, Equatable {
    /// τ ≥ 0; 0 means greedy.
    public var temperature: Float
    /// Keep only the k most likely tokens (nil or 0: all).
    public var topK: Int?
    /// Nucleus mass p in (0, 1] (1: all).
    public var topP: Float
    /// ρ ≥ 1 discourages tokens already present (1: off), as in Keskar et al., 2019 (CTRL).
    public var repetitionPenalty: Float
    /// Seed of the Philox generator that draws samples.
    public var seed: UInt64

    /// Greedy decoding.
    public static let greedy = Sampling()

    /// Defaults: greedy, no top-k, top-p 1, no repetition penalty, seed 0.
    public init(temperature: Float = 0, topK: Int? = nil, topP: Float = 1, repetitionPenalty: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
    }

    /// Why the parameters are invalid, or nil.
    public var problem: String? {
        if !(temperature >= 0) || !temperature.isFinite { return "temperature must be ≥ 0, got \(temperature)" }
        if let topK, topK < 0 { return "top-k must be ≥ 0, got \(topK)" }
        if !(topP > 0 && topP <= 1) { return "top-p must be in (0, 1], got \(topP)" }
        if !(repetitionPenalty > 0) || !repetitionPenalty.isFinite { return "repetition penalty must be > 0, got \(repetitionPenalty)" }
        return nil
    }

    /// Picks the next token from `logits` (one row of V) given the ids of the
    /// sequence so far (for the repetition penalty), drawing from `generator`
    /// when sampling.
    public func next(logits: [Float], history: [Int], generator: inout RandomGenerator) -> Int {
        var logits = logits
        if repetitionPenalty != 1 {
            for id in Set(history) where logits.indices.contains(id) {
                logits[id] = logits[id] > 0 ? logits[id] / repetitionPenalty : logits[id] * repetitionPenalty
            }
        }
        if temperature == 0 { return Self.argmax(logits) }
        // Candidates sorted by logit, descending (ties: lower id first).
        var order = Array(logits.indices)
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if let topK, topK > 0, topK < order.count { order.removeLast(order.count - topK) }
        let maximum = logits[order[0]]
        var weights = order.map { Double(exp((logits[$0] - maximum) / temperature)) }
        let total = weights.reduce(0, +)
        if topP < 1 {
            var mass = 0.0, keep = 0
            while keep < weights.count {
                mass += weights[keep] / total
                keep += 1
                if mass >= Double(topP) { break }
            }
            order.removeLast(order.count - keep)
            weights.removeLast(weights.count - keep)
        }
        let target = Double(generator.nextUniform()) * weights.reduce(0, +)
        var running = 0.0
        for (position, weight) in weights.enumerated() {
            running += weight
            if target < running { return order[position] }
        }
        return order[order.count - 1]
    }

    /// The index of the largest value (the first among equals).
    public static func argmax(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}
