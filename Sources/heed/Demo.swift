import ArgumentParser
import Foundation
import HeedTensor

/// `heed demo`: scaled dot-product attention on a toy sentence, step by step.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute a small scaled dot-product attention and print its weights.",
        discussion: """
            softmax(Q·Kᵀ/√D [+ causal mask]) · V on seeded random embeddings and projections.
            Examples:
              heed demo
              heed demo --tokens "the cat sat on the mat" --causal --seed 7
            """
    )

    @Option(help: "Space-separated tokens (2 to 16).")
    var tokens = "the cat sat on the mat"

    @Option(help: "Head dimension D (1 to 256).")
    var dimension = 8

    @Option(help: "Seed of the random embeddings and projections.")
    var seed: UInt64 = 42

    @Flag(help: "Mask future tokens (each query attends to itself and earlier tokens).")
    var causal = false

    mutating func validate() throws {
        let count = words.count
        guard (2...16).contains(count) else { throw ValidationError("--tokens needs 2 to 16 tokens, got \(count)") }
        guard (1...256).contains(dimension) else { throw ValidationError("--dimension must be in 1...256, got \(dimension)") }
    }

    private var words: [String] { tokens.split(separator: " ").map(String.init) }

    func run() throws {
        let words = self.words
        let t = words.count, d = dimension
        var generator = RandomGenerator(seed: seed)
        let embeddings = Tensor.randomNormal([t, d], generator: &generator)            // [T, D]
        let scale = 1 / Float(d).squareRoot()
        let projections = (0..<3).map { _ in Tensor.randomNormal([d, d], std: scale, generator: &generator) }
        let query = embeddings.matmul(projections[0])                                    // [T, D]
        let key = embeddings.matmul(projections[1])                                      // [T, D]
        let value = embeddings.matmul(projections[2])                                    // [T, D]

        var scores = query.matmul(key.transposed()) * scale                        // [T, T]
        if causal {
            let future = Tensor.build(rows: t, columns: t) { row, column in column > row ? 1 : 0 }
            scores = scores.maskedFill(future, -.infinity)
        }
        let weights = scores.softmax(axis: -1)                                           // [T, T]
        let output = weights.matmul(value)                                               // [T, D]

        print("Scaled dot-product attention: softmax(Q·Kᵀ/√\(d)\(causal ? " + causal mask" : "")) · V")
        print("\(t) tokens, head dimension \(d), seed \(seed)\n")
        print("Attention weights (row = query, column = key; each row sums to 1):\n")
        print(table(rows: words, columns: words, values: weights))
        print("\nOutput (first \(min(d, 4)) of \(d) dimensions per token):\n")
        let shown = (0..<min(d, 4)).map { "d\($0)" }
        print(table(rows: words, columns: shown, values: output, columnCount: d))
    }

    private func table(rows: [String], columns: [String], values: Tensor, columnCount: Int? = nil) -> String {
        let stride = columnCount ?? columns.count
        let width = max(7, (rows + columns).map(\.count).max()! + 1)
        func pad(_ s: String) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        var lines = [pad("") + columns.map(pad).joined()]
        let v = values.scalars
        for (r, name) in rows.enumerated() {
            lines.append(pad(name) + columns.indices.map { pad(String(format: "%.3f", v[r * stride + $0])) }.joined())
        }
        return lines.joined(separator: "\n")
    }
}

extension Tensor {
    fileprivate static func build(rows: Int, columns: Int, _ value: (Int, Int) -> Float) -> Tensor {
        Tensor((0..<rows * columns).map { value($0 / columns, $0 % columns) }, shape: [rows, columns])
    }
}
