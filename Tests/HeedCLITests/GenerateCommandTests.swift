import Foundation
import XCTest

/// `heed generate` on the real SmolLM2 file (skipped locally when models/ is
/// absent, a failure under CI=true): the JSON object, streaming, bad input.
final class GenerateCommandTests: XCTestCase {
    private func smolLM() throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        guard FileManager.default.fileExists(atPath: url.path) else {
            let message = "models/SmolLM2-135M-Instruct.Q4_1.gguf is missing: run scripts/fetch-models.sh"
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("CI: " + message) }
            throw XCTSkip(message)
        }
        return url.path
    }

    func testJSONGreedyMatchesTheKnownAnswer() throws {
        let model = try smolLM()
        let run = try runHeed(["generate", "--model", model, "--prompt", "Once upon a time, there was a little",
                               "--max-tokens", "6", "--json"])
        XCTAssertEqual(run.status, 0, run.error)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])
        XCTAssertEqual(object["prompt_ids"] as? [Int], [6403, 1980, 253, 655, 28, 665, 436, 253, 1838])
        XCTAssertEqual(object["ids"] as? [Int], [8180, 3365, 20391, 617, 5732, 288])   // the continuation
        XCTAssertEqual(object["text"] as? String, " girl named Emma who loved to")
        XCTAssertGreaterThan(object["tokens_per_second"] as? Double ?? 0, 0)
    }

    func testStreamsTextAndReportsSpeed() throws {
        let model = try smolLM()
        let run = try runHeed(["generate", "--model", model, "--prompt", "Once upon a time, there was a little", "--max-tokens", "3"])
        XCTAssertEqual(run.status, 0, run.error)
        XCTAssertEqual(run.output, " girl named Emma\n")
        XCTAssertTrue(run.error.contains("tokens/s"), run.error)
    }

    func testBadInputExitsWithAnError() throws {
        let garbage = FileManager.default.temporaryDirectory.appendingPathComponent("heed-garbage-\(UUID().uuidString).gguf")
        try Data("not a gguf file at all".utf8).write(to: garbage)
        defer { try? FileManager.default.removeItem(at: garbage) }
        let cases: [([String], String)] = [
            (["generate", "--model", "/nonexistent/model.gguf", "--prompt", "x"], "cannot load --model"),
            (["generate", "--model", garbage.path, "--prompt", "x"], "cannot load --model"),
            (["generate", "--model", garbage.path, "--prompt", "x", "--top-p", "2"], "top-p"),
            (["generate", "--model", garbage.path, "--prompt", "x", "--temperature=-1"], "temperature"),
            (["generate", "--model", garbage.path, "--prompt", "x", "--max-tokens=-3"], "--max-tokens"),
        ]
        for (arguments, message) in cases {
            let run = try runHeed(arguments)
            XCTAssertEqual(run.status, 1, "\(arguments): \(run.error)")
            XCTAssertTrue(run.error.contains("Error: ") && run.error.contains(message), "\(arguments): \(run.error)")
            XCTAssertFalse(run.error.contains("Fatal error"))
        }
    }
}
