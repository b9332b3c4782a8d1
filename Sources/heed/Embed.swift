import ArgumentParser
import Foundation
import HeedModels

/// `heed embed`: sentence embeddings from a sentence-transformers model folder.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed sentences with a sentence-transformers model (all-MiniLM-L6-v2).",
        discussion: """
            --model is the model's folder: config.json, model.safetensors,
            tokenizer.json and, as sentence-transformers writes them,
            modules.json, sentence_bert_config.json and the pooling module's
            config.json (scripts/fetch-models.sh puts all-MiniLM-L6-v2 in models/).
            Texts come from the arguments or, when none is given, from standard
            input, one per line (empty lines are skipped). Texts longer than the
            model's max_seq_length are truncated.
            Output: one JSON object per line and text,
              {"text": ..., "ids": [...], "embedding": [...]}
            or with --similarity the cosine similarity matrix, one JSON array per
            line (row i: text i against every text).
            Examples:
              heed embed --model models/all-MiniLM-L6-v2 "The quick brown fox."
              heed embed --model models/all-MiniLM-L6-v2 --similarity \\
                "A cat sits." "A kitten rests." "Stocks fell."
              cat sentences.txt | heed embed --model models/all-MiniLM-L6-v2 > out.jsonl
            """
    )

    @Option(help: "The sentence-transformers model folder.") var model: String
    @Option(name: .customLong("batch-size"), help: "Texts per forward pass (the result does not depend on it).") var batchSize = 32
    @Flag(help: "Print the cosine similarity matrix instead of the embeddings.") var similarity = false
    @Argument(help: "Texts to embed (none: read standard input, one per line).") var texts: [String] = []

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }

    func run() throws {
        let embedder: SentenceEmbedder
        do { embedder = try SentenceEmbedder(folder: URL(fileURLWithPath: model)) } catch {
            throw CLIError("cannot load --model \(model): \(error)")
        }
        let inputs = texts.isEmpty ? Self.standardInputLines() : texts
        let encodings: [Encoding]
        do { encodings = try embedder.tokenize(inputs) } catch { throw CLIError("\(error)") }
        let embeddings = embedder.embed(encodings: encodings, batchSize: batchSize)
        var out = ""
        if similarity {
            for a in embeddings {
                out += "[" + embeddings.map { b in "\(Self.cosine(a, b))" }.joined(separator: ", ") + "]\n"
            }
        } else {
            for (text, (encoding, embedding)) in zip(inputs, zip(encodings, embeddings)) {
                out += "{\"text\": \(Self.jsonString(text)), \"ids\": [\(encoding.ids.map(String.init).joined(separator: ", "))], "
                out += "\"embedding\": [\(embedding.map { "\($0)" }.joined(separator: ", "))]}\n"
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }

    /// Non-empty lines of standard input (a trailing "\r" of CRLF files dropped).
    static func standardInputLines() -> [String] {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
            .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
            .filter { !$0.isEmpty }
    }

    /// a·b / (‖a‖‖b‖); 0 when either is zero.
    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var (dot, na, nb) = (Float(0), Float(0), Float(0))
        for (x, y) in zip(a, b) { dot += x * y; na += x * x; nb += y * y }
        let norm = (na * nb).squareRoot()
        return norm > 0 ? dot / norm : 0
    }

    /// A JSON string literal (RFC 8259): quotes, backslashes and control characters escaped.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
