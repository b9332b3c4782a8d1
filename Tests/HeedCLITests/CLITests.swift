import Foundation
import XCTest

/// Runs the `heed` executable the way a person would and checks what it prints.
final class CLITests: XCTestCase {
    /// The weight rows of the demo's table: token followed by numbers.
    private func weightRows(_ output: String, tokens: Int) -> [[Double]] {
        let lines = output.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.hasPrefix("Attention weights") }) else { return [] }
        return lines[(start + 3)..<(start + 3 + tokens)].map { line in
            line.split(separator: " ").dropFirst().compactMap { Double($0) }
        }
    }

    func testDemoPrintsNormalisedWeights() throws {
        let run = try runHeed(["demo", "--tokens", "a b c d e", "--seed", "3"])
        XCTAssertEqual(run.status, 0, run.error)
        let rows = weightRows(run.output, tokens: 5)
        XCTAssertEqual(rows.count, 5)
        for row in rows {
            XCTAssertEqual(row.count, 5)
            XCTAssertEqual(row.reduce(0, +), 1, accuracy: 0.003)   // 5 entries rounded to 3 decimals
        }
    }

    func testCausalDemoMasksTheFuture() throws {
        let run = try runHeed(["demo", "--causal"])
        XCTAssertEqual(run.status, 0, run.error)
        let rows = weightRows(run.output, tokens: 6)
        XCTAssertEqual(rows.count, 6)
        for (r, row) in rows.enumerated() {
            for c in (r + 1)..<6 { XCTAssertEqual(row[c], 0) }
            XCTAssertEqual(row.reduce(0, +), 1, accuracy: 0.004)
        }
        XCTAssertEqual(rows[0][0], 1)
    }

    func testBadArgumentsGiveUsageAndNonZeroExit() throws {
        for arguments in [["--bogus"], ["demo", "--dimension", "0"], ["demo", "--tokens", "one"], ["demo", "--seed", "minus"], ["nosuchcommand"]] {
            let run = try runHeed(arguments)
            XCTAssertNotEqual(run.status, 0, "\(arguments)")
            XCTAssertTrue(run.error.contains("Usage:") || run.error.contains("Error:"), "\(arguments): \(run.error)")
            XCTAssertFalse(run.error.contains("Fatal error"), "\(arguments)")
        }
    }

    func testVersionAndHelp() throws {
        let version = try runHeed(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertTrue(version.output.range(of: #"^\d+\.\d+\.\d+"#, options: .regularExpression) != nil)
        let help = try runHeed(["demo", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.output.contains("heed demo"))
    }
}
