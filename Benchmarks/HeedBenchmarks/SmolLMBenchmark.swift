import Foundation
import HeedModels
import HeedNN
import HeedTensor

/// SmolLM2-135M-Instruct, f32 weights: prompt processing (one batched forward
/// pass over 512 tokens, last-token logits) and greedy generation (128 tokens
/// with the KV cache), tokens/s. Prints one JSON line per measurement as well,
/// for Benchmarks/models/compare_smollm.py to read.
///
///     swift run -c release HeedBenchmarks smollm [MODEL.gguf]
func runSmolLMBenchmark() {
    let path = CommandLine.arguments.dropFirst(2).first ?? "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    print("\nSmolLM2-135M-Instruct (\(path)), f32 weights")
    let loadStart = DispatchTime.now().uptimeNanoseconds
    let generator: TextGenerator
    do { generator = try TextGenerator(url: URL(fileURLWithPath: path)) } catch {
        print("cannot load \(path): \(error) (run scripts/fetch-models.sh)")
        return
    }
    let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) * 1e-9
    print("load + dequantise: \(format(loadSeconds, 2)) s")

    let ids = smolLMPromptIDs(generator.tokenizer, count: 512)
    let model = generator.model
    let prompt = timeRuns(repetitions: 3, warmup: 1) {
        var cache = LlamaModel.Cache(layers: model.blocks.count)
        _ = Tensor.withoutGrad { model.lastLogits(IndexTensor(ids, shape: [1, ids.count]), cache: &cache) }
    }
    let promptRate = Double(ids.count) / prompt.median
    print("prompt \(ids.count) tokens: \(format(promptRate)) tokens/s (median of 3, \(format(prompt.median, 2)) s)")

    var rates: [Double] = []
    for _ in 0 ..< 3 {
        // Greedy from a short prompt; EOS is not hit within 128 tokens for this prompt.
        guard let result = try? generator.generate(promptIDs: Array(ids.prefix(9)), maxTokens: 128) else { return }
        rates.append(result.tokensPerSecond)
    }
    print("generate 128 tokens: \(format(rates.median)) tokens/s (median of 3)")
    print("{\"engine\": \"heed-f32\", \"prompt_tokens_per_second\": \(promptRate), \"generation_tokens_per_second\": \(rates.median)}")
}

/// The same 512 token ids compare_smollm.py builds: the story sentence, repeated, tokenized, cut.
func smolLMPromptIDs(_ tokenizer: BPETokenizer, count: Int) -> [Int] {
    let sentence = "Once upon a time, there was a little girl named Emma who loved to play in the sun. "
    let ids = tokenizer.encode(String(repeating: sentence, count: count / 10 + 1), addSpecialTokens: false)
    return Array(ids.prefix(count))
}
