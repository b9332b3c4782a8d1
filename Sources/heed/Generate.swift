import ArgumentParser
import Foundation
import HeedModels
import HeedTensor

/// `heed generate`: text from a Llama-architecture GGUF model (SmolLM2), streamed.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text with a Llama-architecture GGUF model (e.g. SmolLM2-135M-Instruct).",
        discussion: """
            Weights stay in their GGUF blocks (Q4_0/Q4_1/Q8_0 read in place by Heed's block kernels, activations in f32);
            --f32 dequantises every weight to f32 at load instead (the reference path). Both give transformers' greedy tokens
            on the tested prompts. --int8-activations also quantises activations in decoding steps (llama.cpp's method:
            faster, not exact).
            Text is streamed as it is generated, then a line with tokens/s on stderr.
            --temperature 0 (the default) is greedy; --chat wraps the prompt in the model's chat template.
            Examples:
              heed generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --prompt "Once upon a time, there was a little"
              heed generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --prompt "What is gravity?" --chat --max-tokens 64
              heed generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --prompt "Hello" --temperature 0.7 --top-k 40 --top-p 0.9 --seed 3
              heed generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --prompt "Once upon a time" --json
            """
    )

    @Option(help: "A GGUF file (llama architecture).") var model: String
    @Option(help: "The prompt text.") var prompt: String
    @Option(name: .customLong("max-tokens"), help: "Most tokens to generate.") var maxTokens = 128
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0
    @Option(name: .customLong("top-k"), help: "Sample among the k most likely tokens (0: all).") var topK = 0
    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass in (0, 1].") var topP: Float = 1
    @Option(name: .customLong("repetition-penalty"), help: "Penalty ≥ 1 for tokens already present (1: off).")
    var repetitionPenalty: Float = 1
    @Option(help: "Seed of the sampler.") var seed: UInt64 = 0
    @Flag(help: "Wrap the prompt in the chat template (a user turn, then the assistant's).") var chat = false
    @Flag(name: .customLong("int8-activations"),
          help: "Quantise activations to 8 bits in decoding steps too, as llama.cpp does (faster, not exact).")
    var int8Activations = false
    @Flag(help: "Dequantise every weight to f32 at load (the reference path; about 4× the memory, slower).") var f32 = false
    @Flag(help: "Print one JSON object {prompt_ids, ids, text, tokens_per_second} instead of streaming.") var json = false

    var sampling: Sampling {
        Sampling(temperature: temperature, topK: topK, topP: topP, repetitionPenalty: repetitionPenalty, seed: seed)
    }

    func run() throws {
        guard maxTokens >= 0 else { throw CLIError("--max-tokens must be ≥ 0, got \(maxTokens)") }
        if let problem = sampling.problem { throw CLIError(problem) }
        guard !prompt.isEmpty else { throw CLIError("--prompt is empty") }
        guard !(f32 && int8Activations) else { throw CLIError("--f32 and --int8-activations exclude each other") }
        let weights: TextGenerator.Weights = f32 ? .float32 : int8Activations ? .quantizedInt8Activations : .quantized
        let generator: TextGenerator
        do { generator = try TextGenerator(url: URL(fileURLWithPath: model), weights: weights) } catch {
            throw CLIError("cannot load --model \(model): \(error)")
        }
        let result: TextGenerator.Result
        do {
            result = try generator.generate(prompt: prompt, maxTokens: maxTokens, sampling: sampling, chat: chat) { piece in
                if !json {
                    FileHandle.standardOutput.write(Data(piece.text.utf8))
                }
                return true
            }
        } catch {
            throw CLIError("\(error)")
        }
        if json {
            let object: [String: Any] = ["prompt_ids": result.promptIDs, "ids": result.ids, "text": result.text,
                                         "tokens_per_second": result.tokensPerSecond]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("")
            let promptRate = result.promptSeconds > 0 ? Double(result.promptIDs.count) / result.promptSeconds : 0
            let line = String(format: "[%d prompt tokens at %.1f tokens/s; %d generated at %.1f tokens/s]\n",
                              result.promptIDs.count, promptRate, result.ids.count, result.tokensPerSecond)
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}
