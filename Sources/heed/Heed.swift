import ArgumentParser
import HeedTensor

/// `heed`: the command-line face of the library. Thin: parse, call, print.
@main
struct Heed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heed",
        abstract: "Heed — attention mechanisms and Transformers in Swift.",
        discussion: """
            Examples:
              heed demo                       # a small scaled dot-product attention, weights as a table
              heed demo --tokens "a b c d"    # your own tokens
              heed embed --model models/all-MiniLM-L6-v2 "Hello, world."   # sentence embeddings as JSON lines
              heed generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --prompt "Once upon a time" --json
              heed bench attention --lengths 1024,2048   # time attention (see heed bench --help)
              heed --version
            """,
        version: HeedVersion.string,
        subcommands: [Demo.self, Attend.self, Catalogue.self, Embed.self, Generate.self, Bench.self]
    )
}

enum HeedVersion {
    static let string = "0.1.0"
}

/// A bad input discovered while running (a file, a tensor, a flag's value
/// against the data): printed as `Error: …` with exit status 1, no usage dump.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
