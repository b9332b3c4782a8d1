import Foundation
import XCTest
import HeedTensor
import HeedTestSupport

/// `heed attend` from the command line reproduces every fixture that
/// `heed catalogue` lists, and rejects bad input with a message and status 1.
final class AttendCommandTests: XCTestCase {
    private var attentionFixtures: URL { fixturesDirectory().appendingPathComponent("attention") }

    func testCatalogueChecksEveryVariantLive() throws {
        let run = try runHeed(["catalogue", "--fixtures", attentionFixtures.path, "--json"])
        XCTAssertEqual(run.status, 0, run.error)
        let rows = run.output.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        XCTAssertGreaterThanOrEqual(rows.count, 20)
        for row in rows {
            XCTAssertEqual(row["pass"] as? Bool, true, "\(row["variant"] ?? "?")")
            XCTAssertLessThan(row["max_abs_error"] as? Double ?? 1, 1e-4)
        }
    }

    func testAttendCommandReproducesEachFixture() throws {
        let listing = try runHeed(["catalogue", "--fixtures", attentionFixtures.path, "--json"])
        let rows = listing.output.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        XCTAssertFalse(rows.isEmpty)
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("heed-attend-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: output) }
        for row in rows {
            let command = try XCTUnwrap(row["command"] as? String)
            var arguments = splitShellWords(command)
            XCTAssertEqual(arguments.removeFirst(), "heed")
            let outputIndex = try XCTUnwrap(arguments.firstIndex(of: "--output"))
            arguments[outputIndex + 1] = output.path
            let run = try runHeed(arguments + ["--weights"])
            XCTAssertEqual(run.status, 0, "\(command): \(run.error)")
            let written = try SafeTensorsFile(url: output)
            let inputIndex = try XCTUnwrap(arguments.firstIndex(of: "--input")), prefixIndex = try XCTUnwrap(arguments.firstIndex(of: "--prefix"))
            let fixture = try SafeTensorsFile(url: URL(fileURLWithPath: arguments[inputIndex + 1]))
            let prefix = arguments[prefixIndex + 1]
            let outputName = try XCTUnwrap(row["output"] as? String)
            assertClose(try written.tensor(outputName), try fixture.tensor(prefix + outputName), rtol: 1e-4, atol: 1e-5, command)
            if fixture.contains(prefix + "weights") {
                assertClose(try written.tensor("weights"), try fixture.tensor(prefix + "weights"), rtol: 1e-4, atol: 1e-5, command)
            }
        }
    }

    func testBadInputIsReportedNotCrashed() throws {
        let fixture = attentionFixtures.appendingPathComponent("attention_dense.safetensors").path
        let garbage = FileManager.default.temporaryDirectory.appendingPathComponent("heed-garbage-\(UUID().uuidString)")
        try Data("not a safetensors file".utf8).write(to: garbage)
        defer { try? FileManager.default.removeItem(at: garbage) }
        let cases: [([String], String)] = [
            (["attend", "--input", garbage.path, "--output", "/tmp/x"], "cannot read --input"),
            (["attend", "--input", fixture, "--output", "/tmp/x"], "no tensor 'q'"),
            (["attend", "--input", fixture, "--prefix", "sdpa_gqa.", "--output", "/tmp/x", "--heads", "5"], "--heads 5"),
            (["attend", "--input", fixture, "--prefix", "sdpa_full.", "--output", "/tmp/x", "--pattern", "window:1"], "takes 2"),
            (["attend", "--input", fixture, "--prefix", "sdpa_full.", "--output", "/tmp/x", "--causal", "sideways"], "--causal"),
            (["attend", "--input", fixture, "--prefix", "sdpa_full.", "--output", "/tmp/x", "--score", "bogus"], "--score"),
            (["attend", "--input", fixture, "--prefix", "sdpa_full.", "--output", "/tmp/x", "--pattern", "padding:9,9"], "padding"),
            (["attend", "--input", fixture, "--prefix", "sdpa_full.", "--output", "/nonexistent-dir/out.safetensors"], "cannot write"),
        ]
        for (arguments, message) in cases {
            let run = try runHeed(arguments)
            XCTAssertEqual(run.status, 1, "\(arguments)")
            XCTAssertTrue(run.error.contains(message), "\(arguments): \(run.error)")
            XCTAssertFalse(run.error.contains("Fatal error"))
        }
    }

    /// Splits a command line printed by `heed catalogue` (single quotes only).
    private func splitShellWords(_ line: String) -> [String] {
        var words: [String] = [], current = "", quoted = false, started = false
        for character in line {
            if character == "'" { quoted.toggle(); started = true } else if character == " " && !quoted {
                if started { words.append(current); current = ""; started = false }
            } else { current.append(character); started = true }
        }
        if started { words.append(current) }
        return words
    }
}
