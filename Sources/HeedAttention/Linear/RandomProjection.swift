import Foundation
import HeedTensor

/// Random projection matrices for random-feature attention, drawn from Philox
/// so that a seed names the same matrix on every machine.
public enum RandomProjection {
    /// Rows w_i ~ N(0, I_D), independent: [rows, columns], drawn in row-major order.
    public static func gaussian(rows: Int, columns: Int, seed: UInt64) -> Tensor {
        precondition(rows >= 1 && columns >= 1, "RandomProjection.gaussian: shape [\(rows), \(columns)] is empty")
        return Tensor.randomNormal([rows, columns], seed: seed)
    }

    /// Orthogonal random features (Choromanski et al., 2021, §2.4 and Thm. 2;
    /// Yu et al., 2016): rows in blocks of D that are exactly orthogonal within
    /// a block, each row with the length of a Gaussian vector, so every row is
    /// still marginally N(0, I_D) but rows of a block are not independent:
    ///
    /// ```
    /// for each block of D rows (the last one cut to what is left):
    ///     G ~ N(0, 1)^{D×D};  Q = rows of G made orthonormal by Gram–Schmidt
    /// W = diag(‖g_1‖, …, ‖g_m‖) · [Q_1; Q_2; …]      with g_i ~ N(0, I_D): ‖g_i‖ ~ χ_D
    /// ```
    ///
    /// Gram–Schmidt on the rows of a Gaussian matrix is QR with a positive
    /// diagonal in R, so each block is Haar-distributed on the orthogonal group
    /// (Mezzadri, 2007). It runs in Double, each row orthogonalised twice
    /// against the rows before it ("twice is enough", Giraud et al., 2005).
    /// The authors' code uses a QR routine; its sign convention only flips
    /// rows, which does not change the distribution.
    ///
    /// Draw order from one Philox stream seeded by `seed`: the blocks' Gaussian
    /// matrices in order (each D×D, row-major), then the m Gaussian vectors whose
    /// norms scale the rows.
    ///
    /// - Returns: [rows, columns], rows m ≥ 1, columns D ≥ 1.
    public static func orthogonalGaussian(rows: Int, columns: Int, seed: UInt64) -> Tensor {
        precondition(rows >= 1 && columns >= 1, "RandomProjection.orthogonalGaussian: shape [\(rows), \(columns)] is empty")
        let d = columns
        var generator = RandomGenerator(seed: seed)
        var directions: [[Double]] = []
        directions.reserveCapacity(rows)
        while directions.count < rows {
            let block = (0..<d).map { _ in (0..<d).map { _ in Double(generator.nextNormal()) } }
            let orthonormal = gramSchmidt(block)
            directions.append(contentsOf: orthonormal.prefix(rows - directions.count))
        }
        var values = [Float](repeating: 0, count: rows * d)
        for i in 0..<rows {
            let length = (0..<d).reduce(0.0) { sum, _ in
                let z = Double(generator.nextNormal())
                return sum + z * z
            }.squareRoot()
            for j in 0..<d { values[i * d + j] = Float(length * directions[i][j]) }
        }
        return Tensor(values, shape: [rows, d])
    }

    /// Orthonormal rows spanning the same flags as `rows` (classical
    /// Gram–Schmidt, applied twice per row). A row that vanishes after
    /// projection (probability zero for Gaussian input) is an error.
    static func gramSchmidt(_ rows: [[Double]]) -> [[Double]] {
        var basis: [[Double]] = []
        for row in rows {
            var v = row
            for _ in 0..<2 {
                for u in basis {
                    let projection = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }
                    for j in v.indices { v[j] -= projection * u[j] }
                }
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            precondition(norm > 1e-12, "RandomProjection.gramSchmidt: linearly dependent rows")
            basis.append(v.map { $0 / norm })
        }
        return basis
    }
}
