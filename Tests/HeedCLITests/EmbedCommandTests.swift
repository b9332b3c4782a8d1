import Foundation
import XCTest
import HeedModels
import HeedTestSupport

/// `heed embed` against the library's ``SentenceEmbedder`` on all-MiniLM-L6-v2,
/// and its errors on bad model folders (those need no fetched model).
final class EmbedCommandTests: XCTestCase {
    let texts = ["The quick brown fox jumps over the lazy dog.", "Café naïve — 東京 🍕", "A \"quoted\"\ttab"]

    /// models/all-MiniLM-L6-v2: skipped when absent, a failure on CI.
    func modelFolder() throws -> URL {
        let url = fixturesDirectory().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("models/all-MiniLM-L6-v2")
        guard FileManager.default.fileExists(atPath: url.appendingPathComponent("model.safetensors").path) else {
            let message = "models/all-MiniLM-L6-v2 is missing: run scripts/fetch-models.sh"
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail(message) }
            throw XCTSkip(message)
        }
        return url
    }

    /// Runs `heed` with `input` on its standard input.
    func runHeed(_ arguments: [String], input: String) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = try heedExecutable()
        process.arguments = arguments
        let stdin = Pipe(), out = Pipe(), err = Pipe()
        process.standardInput = stdin
        process.standardOutput = out
        process.standardError = err
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let error = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output, error)
    }

    func parseLines(_ output: String) throws -> [[String: Any]] {
        try output.split(separator: "\n").map { line in
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
        }
    }

    func testPrintsOneJSONObjectPerTextEqualToTheLibrary() throws {
        let folder = try modelFolder()
        let run = try runHeed(["embed", "--model", folder.path, "--batch-size", "2"] + texts, input: "")
        XCTAssertEqual(run.status, 0, run.error)
        let objects = try parseLines(run.output)
        XCTAssertEqual(objects.count, texts.count)
        let embedder = try SentenceEmbedder(folder: folder)
        let encodings = try embedder.tokenize(texts)
        let embeddings = try embedder.embed(texts, batchSize: 2)
        for (i, object) in objects.enumerated() {
            XCTAssertEqual(Set(object.keys), ["text", "ids", "embedding"])
            XCTAssertEqual(object["text"] as? String, texts[i])
            XCTAssertEqual(object["ids"] as? [Int], encodings[i].ids)
            let embedding = try XCTUnwrap(object["embedding"] as? [Double]).map(Float.init)
            XCTAssertEqual(embedding, embeddings[i])   // printed in Float's shortest round-trip form
        }
        XCTAssertEqual(objects[0]["ids"] as? [Int], [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102])
    }

    func testReadsStandardInputAndPrintsTheSimilarityMatrix() throws {
        let folder = try modelFolder()
        let run = try runHeed(["embed", "--model", folder.path, "--similarity"], input: texts.prefix(2).joined(separator: "\n") + "\n\nA cat.\r\n")
        XCTAssertEqual(run.status, 0, run.error)
        let rows = try run.output.split(separator: "\n").map { line in
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Double])
        }
        let embeddings = try SentenceEmbedder(folder: folder).embed(Array(texts.prefix(2)) + ["A cat."])
        XCTAssertEqual(rows.count, 3)
        for i in 0..<3 {
            XCTAssertEqual(rows[i].count, 3)
            XCTAssertEqual(rows[i][i], 1, accuracy: 1e-5)
            for j in 0..<3 {
                let dot = zip(embeddings[i], embeddings[j]).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                XCTAssertEqual(rows[i][j], Double(dot), accuracy: 1e-5)
                XCTAssertEqual(rows[i][j], rows[j][i], accuracy: 1e-6)
            }
        }
    }

    func testBadModelFoldersAreErrorsWithExitOne() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("heed-embed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("config.json")
        let cases: [(setup: () throws -> Void, model: String, message: String)] = [
            ({}, folder.appendingPathComponent("nowhere").path, "does not exist"),
            ({}, folder.path, "config.json\" does not exist"),
            ({ try Data("{\"hidden_size\": 384,".utf8).write(to: config) }, folder.path, "config.json is not valid JSON"),
            ({ try Data("{\"vocab_size\": 10, \"hidden_size\": \"384\"}".utf8).write(to: config) }, folder.path, "hidden_size: expected an integer"),
            ({ try Data("{\"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2}".utf8).write(to: config) },
             folder.path, "intermediate_size: missing"),
            ({ try Data("{\"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 4}".utf8).write(to: config) },
             folder.path, "model.safetensors\" does not exist"),
            ({ try Data("not safetensors".utf8).write(to: folder.appendingPathComponent("model.safetensors")) }, folder.path, "model.safetensors:"),
            ({}, config.path, "not a folder"),
        ]
        for (setup, model, message) in cases {
            try setup()
            let run = try runHeed(["embed", "--model", model, "hello"], input: "")
            XCTAssertEqual(run.status, 1, "\(message): \(run.error)")
            XCTAssertTrue(run.error.hasPrefix("Error: cannot load --model"), run.error)
            XCTAssertTrue(run.error.contains(message), "expected \(message.debugDescription) in \(run.error)")
            XCTAssertEqual(run.output, "")
        }
        let zero = try runHeed(["embed", "--model", folder.path, "--batch-size", "0", "x"], input: "")
        XCTAssertNotEqual(zero.status, 0)
        XCTAssertTrue(zero.error.contains("--batch-size must be at least 1"), zero.error)
    }
}
