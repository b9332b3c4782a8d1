/// A set of Unicode code points stored as sorted inclusive ranges, with a
/// bitmap for the Basic Multilingual Plane (where nearly all text lives) and
/// binary search above it.
struct CodePointSet: Sendable {
    /// Flattened `[low₀, high₀, low₁, high₁, …]`, sorted and disjoint.
    private let bounds: [UInt32]
    /// Bit `c % 64` of word `c / 64` set when BMP code point `c` is in the set (8 KiB).
    private let plane0: [UInt64]

    init(ranges: [UInt32]) {
        precondition(ranges.count % 2 == 0, "CodePointSet: ranges come in pairs")
        bounds = ranges
        var bits = [UInt64](repeating: 0, count: 0x10000 / 64)
        for pair in stride(from: 0, to: ranges.count, by: 2) where ranges[pair] < 0x10000 {
            for c in ranges[pair]...Swift.min(ranges[pair + 1], 0xFFFF) { bits[Int(c >> 6)] |= 1 << UInt64(c & 63) }
        }
        plane0 = bits
    }

    @inline(__always)
    func contains(_ scalar: Unicode.Scalar) -> Bool { contains(scalar.value) }

    @inline(__always)
    func contains(_ value: UInt32) -> Bool {
        if value < 0x10000 { return plane0[Int(value >> 6)] & (1 << UInt64(value & 63)) != 0 }
        return search(value)
    }

    /// Whether every code point of `range` is in the set, or none is.
    func isUniform(over range: ClosedRange<UInt32>) -> Bool {
        for pair in stride(from: 0, to: bounds.count, by: 2) {
            let (low, high) = (bounds[pair], bounds[pair + 1])
            if low > range.lowerBound && low <= range.upperBound { return false }   // a range starts inside
            if high >= range.lowerBound && high < range.upperBound { return false }  // a range ends inside
        }
        return true
    }

    private func search(_ value: UInt32) -> Bool {
        // The last range whose low bound is ≤ value.
        var lower = 0, upper = bounds.count / 2
        while lower < upper {
            let middle = (lower + upper) / 2
            if bounds[2 * middle] <= value { lower = middle + 1 } else { upper = middle }
        }
        return lower > 0 && value <= bounds[2 * (lower - 1) + 1]
    }
}
