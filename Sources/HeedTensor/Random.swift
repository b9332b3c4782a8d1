import Foundation

/// Philox4x32-10, the counter-based generator of Salmon et al., "Parallel
/// Random Numbers: As Easy as 1, 2, 3" (SC'11) — the generator behind
/// PyTorch's and JAX's GPU random numbers.
///
/// Each 128-bit counter maps to four 32-bit words through ten rounds keyed by
/// a 64-bit key. Being a pure function of (counter, key), any element of a
/// stream can be computed independently: the same seed gives the same numbers
/// on every machine, in any thread order.
public enum Philox {
    /// Ten rounds of Philox4x32 on `counter` with `key`.
    @inlinable
    public static func block(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32))
        -> (UInt32, UInt32, UInt32, UInt32)
    {
        var (c0, c1, c2, c3) = counter
        var (k0, k1) = key
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            (c0, c1, c2, c3) = (UInt32(truncatingIfNeeded: p1 >> 32) ^ c1 ^ k0, UInt32(truncatingIfNeeded: p1),
                                UInt32(truncatingIfNeeded: p0 >> 32) ^ c3 ^ k1, UInt32(truncatingIfNeeded: p0))
            k0 = k0 &+ 0x9E37_79B9
            k1 = k1 &+ 0xBB67_AE85
        }
        return (c0, c1, c2, c3)
    }
}

/// A reproducible stream of random numbers: Philox4x32-10 keyed by a 64-bit
/// seed, counting blocks from zero.
///
/// Word `i` of the stream is word `i % 4` of `Philox.block(counter: (i/4 low,
/// i/4 high, 0, 0), key: (seed low, seed high))`. Uniform floats take the top
/// 24 bits: `Float(word >> 8) · 2⁻²⁴ ∈ [0, 1)`; normals use Box–Muller on two
/// uniforms. These definitions are fixed: a seed names the same numbers on
/// every platform and in every version of Heed.
public struct RandomGenerator: Sendable {
    /// The 64-bit Philox key.
    public let seed: UInt64
    /// Words consumed so far.
    public private(set) var position: UInt64 = 0

    /// A stream starting at word 0 for `seed`.
    public init(seed: UInt64) { self.seed = seed }

    var key: (UInt32, UInt32) { (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)) }

    /// The next 32-bit word.
    public mutating func nextWord() -> UInt32 {
        let blockIndex = position >> 2
        let lane = Int(position & 3)
        position += 1
        let words = Philox.block(counter: (UInt32(truncatingIfNeeded: blockIndex),
                                           UInt32(truncatingIfNeeded: blockIndex >> 32), 0, 0), key: key)
        switch lane {
        case 0: return words.0
        case 1: return words.1
        case 2: return words.2
        default: return words.3
        }
    }

    /// Uniform in [0, 1), 24 random bits.
    public mutating func nextUniform() -> Float { Float(nextWord() >> 8) * 0x1p-24 }

    /// Standard normal by Box–Muller: u₁ ∈ (0, 1], u₂ ∈ [0, 1);
    /// z = √(−2 ln u₁) · cos(2π u₂). One normal per two words.
    public mutating func nextNormal() -> Float {
        let u1 = Double((nextWord() >> 8) + 1) * 0x1p-24
        let u2 = Double(nextWord() >> 8) * 0x1p-24
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }

    /// Uniform integer in 0..<bound (Lemire's unbiased multiply-shift).
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0 && bound <= Int(UInt32.max), "nextInt(below:): bound \(bound) out of range")
        let b = UInt64(bound)
        let threshold = (UInt64(1) << 32) % b   // reject the low words that would bias the result
        while true {
            let product = UInt64(nextWord()) &* b
            if product & 0xFFFF_FFFF >= threshold { return Int(product >> 32) }
        }
    }
}
