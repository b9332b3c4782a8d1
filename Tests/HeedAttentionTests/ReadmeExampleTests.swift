import Foundation
import XCTest
import HeedTestSupport
import HeedTensor
import HeedAttention

/// The README's "API in 20 lines" is this code: the test checks that the
/// README block and the lines between the markers below are the same text,
/// so the example always compiles, and then checks what it computes.
final class ReadmeExampleTests: XCTestCase {
    func testReadmeExampleCompilesRunsAndIsWhatTheReadmeShows() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("heed-readme-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let previous = FileManager.default.currentDirectoryPath
        defer {
            _ = FileManager.default.changeCurrentDirectoryPath(previous)
            try? FileManager.default.removeItem(at: directory)
        }
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(directory.path))

        // README-EXAMPLE-BEGIN
        // Causal multi-head attention: 8 query heads sharing 2 key/value heads, rotary positions.
        var mha = MultiHeadAttention(embedDimension: 64, heads: 8, keyValueHeads: 2,
                                     attention: Attention(pattern: .causal(.bottomRight)), seed: 1)
        mha.positionTransform = Rotary(headDimension: 8)
        let x = Tensor.randomNormal([2, 16, 64], seed: 2)                // [B, T, E]
        let result = mha(x)                                               // output [2, 16, 64], weights [2, 8, 16, 16]
        let loss = result.output.square().mean()
        loss.backward()                                                   // each of mha.parameters now has .grad

        // The same outputs one token at a time, with a KV cache.
        var cache = KVCache()
        let steps = (0..<16).map { mha(x.sliced(axis: 1, start: $0, end: $0 + 1), cache: &cache).output }
        let incremental = Tensor.concatenate(steps, axis: 1)              // ≈ result.output

        try SafeTensors.write(["output": result.output], to: URL(fileURLWithPath: "output.safetensors"))
        let reloaded = try SafeTensorsFile(url: URL(fileURLWithPath: "output.safetensors")).tensor("output")
        // README-EXAMPLE-END

        XCTAssertEqual(result.output.shape, [2, 16, 64])
        XCTAssertEqual(result.weights.shape, [2, 8, 16, 16])
        assertClose(incremental, result.output, rtol: 1e-4, atol: 1e-5)
        XCTAssertEqual(reloaded.scalars, result.output.scalars)
        for parameter in mha.parameters {
            XCTAssertEqual(parameter.grad?.shape, parameter.shape)
        }
        XCTAssertGreaterThan(mha.queryWeight.grad!.abs().sum().item(), 0)

        // The README shows exactly these lines.
        let source = try String(contentsOfFile: "\(#filePath)", encoding: .utf8)
        let readme = try String(contentsOf: fixturesDirectory().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md"), encoding: .utf8)
        func lines(_ text: String, from start: String, to end: String) -> [String] {
            guard let a = text.range(of: start), let b = text.range(of: end, range: a.upperBound..<text.endIndex) else { return [] }
            return text[a.upperBound..<b.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let example = lines(source, from: "// README-EXAMPLE-" + "BEGIN", to: "// README-EXAMPLE-" + "END")
        let shown = lines(readme, from: "```swift\nimport Foundation\nimport HeedTensor\nimport HeedAttention\n", to: "```")
        XCTAssertGreaterThan(example.count, 10)
        XCTAssertEqual(shown, example, "README.md's API example differs from ReadmeExampleTests")
    }
}
