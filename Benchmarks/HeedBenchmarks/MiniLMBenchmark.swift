import Foundation
import HeedModels

// all-MiniLM-L6-v2 encode throughput: sentences/s of `SentenceEmbedder.embed`
// (tokenise, BERT forward, mean pooling, L2) with batch 32, as
// Benchmarks/models/compare_minilm.py measures sentence-transformers.
//
//     swift run -c release HeedBenchmarks minilm [MODEL_DIR] [SENTENCES_FILE] [REPETITIONS]
//
// MODEL_DIR defaults to models/all-MiniLM-L6-v2; SENTENCES_FILE holds one
// sentence per line (compare_minilm.py writes the 256 it times); without it,
// 256 built-in sentences of about 32 tokens are used. The last line printed is
// `minilm_sentences_per_second <median> <best>` for the comparison script.

/// 256 sentences of about 32 tokens, from 8 templates with varied nouns.
func builtInMiniLMSentences() -> [String] {
    let templates = [
        "The committee reviewed the %@ proposal on Tuesday and decided to postpone the final vote until the budget report arrives.",
        "After a long walk through the old town, we stopped at a small cafe that served the best %@ we had ever tasted.",
        "Researchers found that the new %@ model improves accuracy on several benchmarks while using far less memory than before.",
        "She packed her bags, checked the weather forecast twice, and left early to catch the morning train to the %@ festival.",
        "If the %@ sensor reports a temperature above the threshold, the controller shuts the pump down and sends an alert.",
        "Children in the village learn to swim in the river every summer, guided by an instructor who loves %@ stories.",
        "The quarterly report shows that sales of %@ products grew steadily in Europe but fell slightly in North America.",
        "Our team spent the afternoon debugging a subtle race condition in the %@ scheduler that only appeared under heavy load.",
    ]
    let nouns = ["energy", "coffee", "language", "music", "water", "garden", "river", "mountain", "city", "network",
                 "winter", "ocean", "forest", "science", "history", "market", "transport", "library", "summer", "harvest",
                 "software", "film", "design", "kitchen", "bicycle", "island", "theatre", "weather", "football", "chess",
                 "painting", "railway"]
    return (0..<256).map { i in
        templates[i % templates.count].replacingOccurrences(of: "%@", with: nouns[i / templates.count]) + " Everyone agreed it mattered."
    }
}

func runMiniLMBenchmark(arguments: [String]) {
    let folder = URL(fileURLWithPath: arguments.first ?? "models/all-MiniLM-L6-v2")
    let sentences: [String]
    if arguments.count > 1 {
        guard let text = try? String(contentsOfFile: arguments[1], encoding: .utf8) else {
            print("minilm: cannot read \(arguments[1])")
            exit(1)
        }
        sentences = text.split(separator: "\n").map(String.init)
    } else {
        sentences = builtInMiniLMSentences()
    }
    let repetitions = arguments.count > 2 ? Int(arguments[2]) ?? 5 : 5
    let embedder: SentenceEmbedder
    do { embedder = try SentenceEmbedder(folder: folder) } catch {
        print("minilm: \(error)")
        exit(1)
    }
    let tokens = (try? embedder.tokenize(sentences).map(\.count)) ?? []
    print("\nall-MiniLM-L6-v2 encode: \(sentences.count) sentences, \(tokens.reduce(0, +)) tokens "
          + "(mean \(format(Double(tokens.reduce(0, +)) / Double(max(tokens.count, 1))))), batch 32")
    var sink: Float = 0
    let times = timeRuns(repetitions: repetitions, warmup: 1) {
        let embeddings = (try? embedder.embed(sentences, batchSize: 32)) ?? []
        sink += embeddings.first?.first ?? 0
    }
    let rates = times.map { Double(sentences.count) / $0 }
    print("runs (sentences/s): \(rates.map { format($0) }.joined(separator: ", "))  [checksum \(sink)]")
    print("minilm_sentences_per_second \(format(Double(sentences.count) / times.median)) \(format(Double(sentences.count) / times.best))")
}
