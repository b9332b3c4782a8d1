import Foundation
import HeedModels
import HeedNN
import HeedTensor

/// SmolLM2-135M-Instruct: prompt processing (one batched forward pass over
/// 512 tokens, last-token logits) and greedy generation (128 tokens with the
/// KV cache), tokens/s, for the quantised path (weights in their GGUF blocks),
/// the same with 8-bit activations in decoding steps, and the f32 reference path. Prints one JSON line per path as well, for
/// Benchmarks/models/compare_smollm.py to read.
///
///     swift run -c release HeedBenchmarks smollm [MODEL.gguf] [quantized|int8|f32|all]
func runSmolLMBenchmark() {
    let arguments = Array(CommandLine.arguments.dropFirst(2))
    let path = arguments.first ?? "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    let which = arguments.dropFirst().first ?? "all"
    let paths: [(String, TextGenerator.Weights)] = [("quantized", .quantized), ("int8", .quantizedInt8Activations), ("f32", .float32)]
    var greedy: [String: [Int]] = [:]
    for (name, weights) in paths where which == "all" || which == name {
        greedy[name] = benchmarkSmolLM(path: path, name: name, weights: weights)
    }
    // Drift of the int8-activation mode: where its greedy tokens leave the exact path's.
    if let exact = greedy["quantized"], let fast = greedy["int8"] {
        let same = zip(exact, fast).prefix { $0 == $1 }.count
        print("int8 activations: greedy tokens equal the f32-activation path's for the first \(same) of \(exact.count)")
    }
}

/// Measures one path; returns its greedy ids (for the drift comparison).
@discardableResult
private func benchmarkSmolLM(path: String, name: String, weights: TextGenerator.Weights) -> [Int] {
    print("\nSmolLM2-135M-Instruct (\(path)), \(name) path")
    let loadStart = DispatchTime.now().uptimeNanoseconds
    let generator: TextGenerator
    do { generator = try TextGenerator(url: URL(fileURLWithPath: path), weights: weights) } catch {
        print("cannot load \(path): \(error) (run scripts/fetch-models.sh)")
        return []
    }
    let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) * 1e-9
    print("load: \(format(loadSeconds, 2)) s, peak RSS so far \(format(Double(peakResidentBytes()) / 1_048_576, 0)) MiB")

    let ids = smolLMPromptIDs(generator.tokenizer, count: 512)
    let prompt = timeRuns(repetitions: 3, warmup: 1) { promptPass(generator.model, ids) }
    let promptRate = Double(ids.count) / prompt.median
    print("prompt \(ids.count) tokens: \(format(promptRate)) tokens/s (median of 3, \(format(prompt.median, 2)) s)")

    var rates: [Double] = [], generated: [Int] = []
    for _ in 0 ..< 3 {
        // Greedy from a short prompt; EOS is not hit within 128 tokens for this prompt.
        guard let result = try? generator.generate(promptIDs: Array(ids.prefix(9)), maxTokens: 128) else { return [] }
        rates.append(result.tokensPerSecond)
        generated = result.ids
    }
    let peak = Double(peakResidentBytes()) / 1_048_576
    print("generate 128 tokens: \(format(rates.median)) tokens/s (median of 3); peak RSS \(format(peak, 0)) MiB")
    print("{\"engine\": \"heed-\(name)\", \"prompt_tokens_per_second\": \(promptRate), \"generation_tokens_per_second\": \(rates.median), \"peak_rss_mib\": \(peak)}")
    return generated
}

private func promptPass<Model: CausalLanguageModel>(_ model: Model, _ ids: [Int]) {
    var cache = model.makeCache()
    _ = model.nextTokenLogits(ids, cache: &cache)
}

/// The same 512 token ids compare_smollm.py builds: the story sentence, repeated, tokenized, cut.
func smolLMPromptIDs(_ tokenizer: BPETokenizer, count: Int) -> [Int] {
    let sentence = "Once upon a time, there was a little girl named Emma who loved to play in the sun. "
    let ids = tokenizer.encode(String(repeating: sentence, count: count / 10 + 1), addSpecialTokens: false)
    return Array(ids.prefix(count))
}
