import Foundation
import XCTest

/// `heed bench`: the JSON lines scripts read (fields, format, FLOP arithmetic)
/// and argument errors. No timing is asserted: only that times are positive
/// and that GFLOP/s is the documented FLOP count over the reported time.
final class BenchCommandTests: XCTestCase {
    /// The documented format of one `heed bench attention --json` line, keys in this order.
    private let attentionLine = #"^\{"L": [0-9]+, "causal": (true|false), "pass": "(forward|forward\+backward)", "ms": [0-9]+\.[0-9]+, "gflops": [0-9]+\.[0-9]+\}$"#

    private func records(_ output: String) throws -> [[String: Any]] {
        try output.split(separator: "\n").map { line in
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        }
    }

    /// ms > 0 and gflops = flops / (ms · 10⁶) up to the four significant digits printed.
    private func assertConsistent(_ record: [String: Any], flops: Double, file: StaticString = #filePath, line: UInt = #line) throws {
        let ms = try XCTUnwrap(record["ms"] as? Double, file: file, line: line)
        let gflops = try XCTUnwrap(record["gflops"] as? Double, file: file, line: line)
        XCTAssertTrue(ms.isFinite && ms > 0, "ms \(ms)", file: file, line: line)
        XCTAssertGreaterThan(gflops, 0, file: file, line: line)
        XCTAssertEqual(gflops, flops / (ms * 1e6), accuracy: 2e-3 * gflops, "\(record)", file: file, line: line)
    }

    func testAttentionJSONLinesFollowTheDocumentedFormat() throws {
        let run = try runHeed(["bench", "attention", "--lengths", "64,128", "--repeats", "1", "--json"])
        XCTAssertEqual(run.status, 0, run.error)
        for line in run.output.split(separator: "\n") {
            XCTAssertNotNil(line.range(of: attentionLine, options: .regularExpression), String(line))
        }
        let rows = try records(run.output)
        XCTAssertEqual(rows.count, 8)   // 2 lengths × causal or not × 2 passes
        var seen = Set<String>()
        for row in rows {
            XCTAssertEqual(Set(row.keys), ["L", "causal", "pass", "ms", "gflops"])
            let length = try XCTUnwrap(row["L"] as? Int), causal = try XCTUnwrap(row["causal"] as? Bool)
            let pass = try XCTUnwrap(row["pass"] as? String)
            seen.insert("\(length) \(causal) \(pass)")
            // 4·B·H·L²·D with B = 1, H = 8, D = 64; half when causal; × 3.5 with the backward.
            let forward = 4.0 * 8 * Double(length * length) * 64 * (causal ? 0.5 : 1)
            try assertConsistent(row, flops: pass == "forward" ? forward : 3.5 * forward)
        }
        let expected = [64, 128].flatMap { l in [false, true].flatMap { c in ["forward", "forward+backward"].map { "\(l) \(c) \($0)" } } }
        XCTAssertEqual(seen, Set(expected))
    }

    /// --kernels caps Heed's kernels for the run and the header names them; a
    /// name it does not know is an error that lists the choices.
    func testKernelsOptionNamesWhatRunsAndRejectsUnknownNames() throws {
        let portable = try runHeed(["bench", "attention", "--lengths", "32", "--repeats", "1", "--kernels", "portable"])
        XCTAssertEqual(portable.status, 0, portable.error)
        XCTAssertTrue(portable.output.contains(", portable kernels"), portable.output)
        let automatic = try runHeed(["bench", "linear", "--lengths", "64", "--repeats", "1", "--engines", "elu"])
        XCTAssertEqual(automatic.status, 0, automatic.error)
        XCTAssertNotNil(automatic.output.range(of: ", (avx512|avx2\\+fma|portable) kernels", options: .regularExpression),
                        automatic.output)
        let bad = try runHeed(["bench", "attention", "--lengths", "32", "--kernels", "sse"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.error.contains("--kernels takes automatic, avx2, portable; got 'sse'"), bad.error)
    }

    func testAttentionHonoursShapeOptionsAndPrintsATable() throws {
        let json = try runHeed(["bench", "attention", "--lengths", "48", "--heads", "2", "--head-dimension", "16", "--batch", "3",
                                "--repeats", "2", "--warmup", "0", "--engine", "dense", "--json"])
        XCTAssertEqual(json.status, 0, json.error)
        let rows = try records(json.output)
        XCTAssertEqual(rows.count, 4)
        for row in rows {
            let causal = try XCTUnwrap(row["causal"] as? Bool), pass = try XCTUnwrap(row["pass"] as? String)
            let forward = 4.0 * 3 * 2 * 48 * 48 * 16 * (causal ? 0.5 : 1)
            try assertConsistent(row, flops: pass == "forward" ? forward : 3.5 * forward)
        }
        let table = try runHeed(["bench", "attention", "--lengths", "32", "--repeats", "1"])
        XCTAssertEqual(table.status, 0, table.error)
        let lines = table.output.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("L ") && $0.contains("GFLOP/s") }, table.output)
        XCTAssertEqual(lines.filter { $0.hasPrefix("32 ") }.count, 4, table.output)
    }

    func testDenseLengthsOverTheMemoryLimitAreSkippedWithANote() throws {
        // H = 64, L = 128: the dense scores take 64·128²·4 B = 4 MiB > 1 MiB; L = 8 takes 16 KiB.
        let run = try runHeed(["bench", "attention", "--engine", "dense", "--lengths", "8,128", "--heads", "64", "--dense-limit-mib", "1",
                               "--repeats", "1", "--warmup", "0", "--json"])
        XCTAssertEqual(run.status, 0, run.error)
        let lengths = try records(run.output).map { $0["L"] as? Int }
        XCTAssertEqual(lengths, [8, 8, 8, 8])
        XCTAssertTrue(run.error.contains("skipping L=128"), run.error)
    }

    func testLinearJSONLinesCarryTheEngine() throws {
        let run = try runHeed(["bench", "linear", "--engines", "elu,performer,rfa", "--lengths", "32,64", "--features", "16",
                               "--chunk", "8", "--repeats", "1", "--warmup", "0", "--json"])
        XCTAssertEqual(run.status, 0, run.error)
        XCTAssertTrue(run.output.hasPrefix(#"{"engine": "elu", "L": 32, "causal": false, "pass": "forward", "ms": "#), run.output)
        let rows = try records(run.output)
        XCTAssertEqual(rows.count, 12)   // 3 engines × causal or not × 2 lengths, forward only by default
        for row in rows {
            XCTAssertEqual(Set(row.keys), ["engine", "L", "causal", "pass", "ms", "gflops"])
            XCTAssertEqual(row["pass"] as? String, "forward")
            let engine = try XCTUnwrap(row["engine"] as? String), length = Double(try XCTUnwrap(row["L"] as? Int))
            // B·H·(4·L·F·D + 4·L·D·P): F = 16, P = 16 (performer); F = 16, P = 8 (rfa); F = D = 64, P = 0 (elu).
            let (featureWidth, projectionRows): (Double, Double) = engine == "elu" ? (64, 0) : engine == "rfa" ? (16, 8) : (16, 16)
            try assertConsistent(row, flops: 8 * (4 * length * featureWidth * 64 + 4 * length * 64 * projectionRows))
        }
    }

    func testBadArgumentsExitWithStatusOneAndAMessage() throws {
        let cases: [([String], String)] = [
            (["bench", "attention", "--lengths", "0"], "--lengths"),
            (["bench", "attention", "--lengths", "64,abc"], "--lengths"),
            (["bench", "attention", "--lengths", ""], "--lengths"),
            (["bench", "attention", "--lengths", "64,,128"], "--lengths"),
            (["bench", "attention", "--lengths", "64", "--heads", "0"], "--heads"),
            (["bench", "attention", "--lengths", "64", "--head-dimension", "5000"], "--head-dimension"),
            (["bench", "attention", "--lengths", "64", "--repeats", "0"], "--repeats"),
            (["bench", "attention", "--lengths", "64", "--engine", "sideways"], "--engine"),
            (["bench", "attention", "--lengths", "64", "--dense-limit-mib", "0"], "--dense-limit-mib"),
            (["bench", "linear", "--lengths", "64", "--engines", "performer,linformer"], "--engines"),
            (["bench", "linear", "--lengths", "64", "--features", "7"], "--features"),
            (["bench", "linear", "--lengths", "64", "--passes", "backward"], "--passes"),
            (["bench", "linear", "--lengths", "64", "--min-time-ms", "60001"], "--min-time-ms"),
            (["bench", "linear", "--lengths", "64", "--min-time-ms=-1"], "--min-time-ms"),
            (["bench", "linear", "--lengths", "64", "--sweeps", "0"], "--sweeps"),
        ]
        for (arguments, message) in cases {
            let run = try runHeed(arguments)
            XCTAssertEqual(run.status, 1, "\(arguments): \(run.error)")
            XCTAssertTrue(run.error.contains("Error:") && run.error.contains(message), "\(arguments): \(run.error)")
            XCTAssertTrue(run.output.isEmpty, "\(arguments) printed results: \(run.output)")
        }
        for arguments in [["bench", "attention", "--bogus"], ["bench", "nosuchbenchmark"], ["bench", "attention", "--heads", "many"]] {
            let run = try runHeed(arguments)
            XCTAssertNotEqual(run.status, 0, "\(arguments)")
            XCTAssertTrue(run.error.contains("Usage:"), "\(arguments): \(run.error)")
        }
    }

    func testHelpDocumentsTheFLOPConvention() throws {
        let help = try runHeed(["bench", "attention", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.output.contains("4·B·H·L²·D"), help.output)
        XCTAssertTrue(help.output.contains("3.5 × forward"), help.output)
        XCTAssertTrue(help.output.contains("heed bench attention --lengths"), help.output)
    }
}
