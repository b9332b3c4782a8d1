import Foundation
import HeedTensor

// Absolute position embeddings: vectors added to the token embeddings before
// the first layer. Two kinds: the fixed sinusoids of the original Transformer
// and a learned table (BERT, GPT-2). Both take an `offset` so that a decoder
// with a KV cache embeds positions offset..<offset+T.

/// Fixed sinusoidal position embeddings (Vaswani et al., 2017, §3.5).
///
/// ```
/// ω_i          = base^(−2i/D)                    i = 0, 1, …, ⌈D/2⌉ − 1
/// PE(p, 2i)    = sin(p · ω_i)
/// PE(p, 2i+1)  = cos(p · ω_i)
/// ```
///
/// With `base = 10000` this is the paper's formula exactly. Angles, sines
/// and cosines are computed in `Double` and rounded once to `Float`, so large
/// positions keep full f32 accuracy (PyTorch code that forms `p · ω_i` in f32
/// loses ~|p|·2⁻²⁴ radians).
///
/// **Odd D**: the formula is applied column by column, so the last column
/// (index D − 1 = 2i, even) is a sine with frequency ω_{(D−1)/2}; there are
/// ⌈D/2⌉ sine columns and ⌊D/2⌋ cosine columns. Nothing is padded or dropped.
///
/// The table has no gradient (a constant).
public struct SinusoidalPositions {
    /// Where the sines and cosines sit in a row.
    public enum Layout: Sendable {
        /// The paper's layout: sine in even columns, cosine in odd columns
        /// (`[sin ω₀p, cos ω₀p, sin ω₁p, cos ω₁p, …]`).
        case interleaved
        /// The same values, columns reordered as all sines then all cosines
        /// (`[sin ω₀p, …, sin ω_{⌈D/2⌉−1}p | cos ω₀p, …, cos ω_{⌊D/2⌋−1}p]`), as
        /// in Hugging Face's `create_sinusoidal_embeddings` (DistilBERT). Note
        /// that fairseq and tensor2tensor also concatenate but space their
        /// frequencies as base^(−i/(⌊D/2⌋−1)); that spacing is not this one.
        case concatenated
    }

    /// D, the width of each embedding.
    public let dimension: Int
    /// The wavelength base (10000 in the paper).
    public let base: Double
    /// Sine/cosine placement.
    public let layout: Layout

    /// - Parameters:
    ///   - dimension: D ≥ 1 (odd allowed, see the type's note).
    ///   - base: > 0; the paper's 10000 by default.
    ///   - layout: `.interleaved` (the paper) by default.
    public init(dimension: Int, base: Double = 10000, layout: Layout = .interleaved) {
        precondition(dimension >= 1, "SinusoidalPositions: dimension \(dimension) must be at least 1")
        precondition(base > 0, "SinusoidalPositions: base \(base) must be positive")
        self.dimension = dimension
        self.base = base
        self.layout = layout
    }

    /// The embeddings of positions `offset ..< offset + length`.
    /// - Parameters:
    ///   - length: T ≥ 0.
    ///   - offset: the first position (e.g. the number of cached tokens); any
    ///     integer, negative included (the formula is defined everywhere).
    /// - Returns: [T, D], no gradient.
    public func callAsFunction(length: Int, offset: Int = 0) -> Tensor {
        precondition(length >= 0, "SinusoidalPositions: length \(length) is negative")
        return self(positions: Array(offset ..< offset + length))
    }

    /// The embeddings of arbitrary positions (packed sequences, rotating caches).
    /// - Returns: [N, D] for N positions, no gradient.
    public func callAsFunction(positions: [Int]) -> Tensor {
        let d = dimension
        let sines = (d + 1) / 2
        // Column k of the interleaved table uses frequency index k/2; sine if k even.
        let frequencies = (0 ..< sines).map { i in Foundation.pow(base, -2 * Double(i) / Double(d)) }
        // Column of the output that interleaved column k goes to.
        let destination: [Int] = (0 ..< d).map { k in
            switch layout {
            case .interleaved: return k
            case .concatenated: return k % 2 == 0 ? k / 2 : sines + k / 2
            }
        }
        var values = [Float](repeating: 0, count: positions.count * d)
        for (row, position) in positions.enumerated() {
            for k in 0 ..< d {
                let angle = Double(position) * frequencies[k / 2]
                values[row * d + destination[k]] = Float(k % 2 == 0 ? Foundation.sin(angle) : Foundation.cos(angle))
            }
        }
        return Tensor(values, shape: [positions.count, d])
    }
}

/// Learned absolute position embeddings: one trainable row per position
/// (Gehring et al., 2017; BERT; GPT-2).
///
/// ```
/// E(p) = table[p, :]          p ∈ 0 ..< maxPositions
/// ∂table[p, :] = Σ over the outputs that looked up p of their gradient
/// ```
///
/// The lookup is ``HeedTensor/Tensor/embedding(_:)``, so gradients reach the
/// table (repeated positions add up). A position outside `0 ..< maxPositions`
/// is a programming error and stops with a message naming it and the bound.
public struct LearnedPositions {
    /// [maxPositions, D], `requiresGrad` (the trainable parameter).
    public let table: Tensor

    /// The number of positions the table holds.
    public var maxPositions: Int { table.shape[0] }
    /// D, the width of each embedding.
    public var dimension: Int { table.shape[1] }

    /// - Parameters:
    ///   - maxPositions: rows of the table, ≥ 1.
    ///   - dimension: D ≥ 1.
    ///   - table: an existing [maxPositions, D] table (e.g. loaded from a
    ///     checkpoint), used as is; when nil, a fresh table N(0, 0.02²) drawn
    ///     from Philox with `seed` (the GPT-2/BERT initialisation) with
    ///     `requiresGrad` set.
    ///   - seed: the generator seed for a fresh table.
    public init(maxPositions: Int, dimension: Int, table: Tensor? = nil, seed: UInt64 = 0) {
        precondition(maxPositions >= 1 && dimension >= 1,
                     "LearnedPositions: need maxPositions ≥ 1 and dimension ≥ 1, got \(maxPositions), \(dimension)")
        if let table {
            precondition(table.shape == [maxPositions, dimension],
                         "LearnedPositions: table shape \(table.shape) should be [\(maxPositions), \(dimension)]")
            self.table = table
        } else {
            self.table = Tensor.randomNormal([maxPositions, dimension], std: 0.02, seed: seed, requiresGrad: true)
        }
    }

    /// The embeddings of positions `offset ..< offset + length`.
    /// - Precondition: `0 ≤ offset` and `offset + length ≤ maxPositions`.
    /// - Returns: [T, D], differentiable with respect to ``table``.
    public func callAsFunction(length: Int, offset: Int = 0) -> Tensor {
        precondition(length >= 0, "LearnedPositions: length \(length) is negative")
        return self(positions: IndexTensor(Array(offset ..< offset + length)))
    }

    /// The embeddings of arbitrary positions.
    /// - Parameter positions: any shape, values in `0 ..< maxPositions`.
    /// - Returns: `positions.shape + [D]`, differentiable with respect to ``table``.
    public func callAsFunction(positions: IndexTensor) -> Tensor {
        for position in positions.values {
            precondition(position >= 0 && position < maxPositions,
                         "LearnedPositions: position \(position) is outside the table's 0..<\(maxPositions) positions")
        }
        return table.embedding(positions)
    }
}
