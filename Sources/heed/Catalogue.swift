import ArgumentParser
import Foundation
import HeedAttention
import HeedTensor

/// One catalogue variant: what it is, where its reference comes from, and
/// the `heed attend` flags that reproduce its committed fixture.
struct CatalogueEntry: Sendable {
    let variant: String
    let reference: String
    let fixture: String
    let prefix: String
    let flags: [String]
    /// The output compared with the fixture (`out`, or `context` for layers).
    var outputName = "out"
}

/// Every variant with a PyTorch fixture that `heed attend` can run.
enum CatalogueEntries {
    static let dense = "attention_dense.safetensors"
    static let all: [CatalogueEntry] = [
        .init(variant: "scaled dot-product (D = 59)", reference: "F.scaled_dot_product_attention", fixture: dense, prefix: "sdpa_full.", flags: []),
        .init(variant: "causal, top-left (Tq < Tk)", reference: "SDPA is_causal", fixture: dense, prefix: "sdpa_causal_top_left.", flags: ["--causal", "top-left"]),
        .init(variant: "causal, bottom-right", reference: "SDPA + tril(Tk − Tq)", fixture: dense, prefix: "sdpa_causal_bottom_right.", flags: ["--causal", "bottom-right"]),
        .init(variant: "single token (T = 1)", reference: "SDPA", fixture: dense, prefix: "sdpa_single_token.", flags: []),
        .init(variant: "boolean mask, empty rows → 0", reference: "SDPA + zero rule", fixture: dense, prefix: "sdpa_bool_mask_empty_rows.", flags: []),
        .init(variant: "additive float bias", reference: "SDPA attn_mask float", fixture: dense, prefix: "sdpa_float_bias.", flags: []),
        .init(variant: "scale override", reference: "SDPA scale=0.3", fixture: dense, prefix: "sdpa_scale.", flags: ["--scale", "0.3"]),
        .init(variant: "temperature τ", reference: "SDPA scale=0.3", fixture: dense, prefix: "sdpa_scale.", flags: ["--scale", "0.6", "--temperature", "2"]),
        .init(variant: "grouped-query heads (6/2)", reference: "SDPA enable_gqa", fixture: dense, prefix: "sdpa_gqa.", flags: ["--heads", "6", "--kv-heads", "2"]),
        .init(variant: "multi-query heads, causal", reference: "SDPA enable_gqa", fixture: dense, prefix: "sdpa_mqa_causal.", flags: ["--kv-heads", "1", "--causal", "top-left"]),
        .init(variant: "dot score", reference: "Luong eq. 8 (dot)", fixture: dense, prefix: "score_dot.", flags: ["--score", "dot"]),
        .init(variant: "bilinear score", reference: "Luong eq. 8 (general)", fixture: dense, prefix: "score_bilinear.", flags: ["--score", "bilinear"]),
        .init(variant: "additive score", reference: "Bahdanau eq. 6", fixture: dense, prefix: "score_additive.", flags: ["--score", "additive"]),
        .init(variant: "cosine score", reference: "scaled cosine", fixture: dense, prefix: "score_cosine.", flags: ["--score", "cosine", "--scale", "5"]),
        .init(variant: "sliding window (2, 1)", reference: "Longformer §3.1", fixture: dense, prefix: "pattern_sliding_window.", flags: ["--pattern", "window:2,1"]),
        .init(variant: "dilated window", reference: "Longformer §3.1", fixture: dense, prefix: "pattern_dilated_window.", flags: ["--pattern", "dilated:2,1,2"]),
        .init(variant: "global tokens ∪ window", reference: "Longformer §3.1", fixture: dense, prefix: "pattern_global_window.", flags: ["--pattern", "window:1,1|global:0,5"]),
        .init(variant: "strided ∩ causal", reference: "Sparse Transformer §4.2", fixture: dense, prefix: "pattern_strided_causal.", flags: ["--pattern", "strided:3", "--causal", "top-left"]),
        .init(variant: "fixed ∩ causal", reference: "Sparse Transformer §4.2", fixture: dense, prefix: "pattern_fixed_causal.", flags: ["--pattern", "fixed:3,1", "--causal", "top-left"]),
        .init(variant: "BigBird (block 2, 2 random)", reference: "Zaheer §2 + Philox rules", fixture: dense, prefix: "pattern_bigbird.", flags: ["--pattern", "bigbird:2,1,1,2,7"]),
        .init(variant: "BigBird (block 3, window 3)", reference: "Zaheer §2 + Philox rules", fixture: dense, prefix: "pattern_bigbird_window3.", flags: ["--pattern", "bigbird:3,3,1,1,11"]),
        .init(variant: "block-diagonal (packed)", reference: "segment mask", fixture: dense, prefix: "pattern_block_diagonal.", flags: ["--pattern", "block-diagonal:3,1,3"]),
        .init(variant: "key padding (all-padded row)", reference: "SDPA + zero rule", fixture: dense, prefix: "pattern_key_padding.", flags: ["--pattern", "padding:3,0"]),
        .init(variant: "causal × padding", reference: "SDPA + zero rule", fixture: dense, prefix: "pattern_causal_padding.", flags: ["--pattern", "padding:4,4", "--causal", "top-left"]),
        .init(variant: "ALiBi + RoPE (half), GQA, causal", reference: "Press §3; Su eq. 34; SDPA", fixture: "positions_attention.safetensors",
              prefix: "alibi_rope.", flags: ["--alibi", "causal", "--rope", "half", "--causal", "bottom-right"]),
        .init(variant: "T5 buckets + RoPE (interleaved)", reference: "Raffel §2.1; Su eq. 34; SDPA", fixture: "positions_attention.safetensors",
              prefix: "t5_rope.", flags: ["--relative", "bidirectional", "--rope", "interleaved", "--rotary-dimension", "58"]),
    ] + normalizers + linear + recurrent + layers

    /// nn.MultiheadAttention with its own weights (packed in_proj, padding; kdim/vdim, no bias).
    static let layers: [CatalogueEntry] = [
        .init(variant: "multi-head (packed, padding)", reference: "nn.MultiheadAttention", fixture: dense, prefix: "mha_self_padding.",
              flags: ["--layer", "multihead", "--heads", "4", "--pattern", "padding:6,3"]),
        .init(variant: "multi-head (kdim 7, vdim 5)", reference: "nn.MultiheadAttention", fixture: dense, prefix: "mha_cross_kdim_vdim_nobias.",
              flags: ["--layer", "multihead", "--heads", "3"]),
    ]

    /// Normalizers on stored scores (and masks with empty rows): `weights` is compared.
    static let normalizers: [CatalogueEntry] = [
        ("sparsemax (masked, empty row)", "entmax package", "sparsemax", "main.", "sparsemax"),
        ("sparsemax, Tq = 1", "entmax package", "sparsemax", "unmasked.", "sparsemax"),
        ("entmax-1.5 (masked, empty row)", "entmax package", "entmax15", "main.", "entmax15"),
        ("divisive, exp drive", "Carandini–Heeger eq. 1", "divisive", "exponential.main.", "divisive:8,1.5"),
        ("divisive, rectified drive", "Carandini–Heeger eq. 1", "divisive", "rectified.main.", "divisive:3,2,rectified"),
        ("local pools, exp drive", "Reynolds–Heeger pools", "localpools", "exponential.main.", "local:3,2,1"),
        ("local pools, rectified drive", "Reynolds–Heeger pools", "localpools", "rectified.main.", "local:2,0.5,2,rectified"),
        ("hard attention, argmax", "torch.argmax + one_hot", "hard", "main.", "hard-argmax"),
    ].map { .init(variant: $0.0, reference: $0.1, fixture: "normalizers_\($0.2).safetensors", prefix: $0.3,
                  flags: ["--normalizer", $0.4], outputName: "weights") } + [
        .init(variant: "hard attention, sampled", reference: "inverse CDF + Philox rules", fixture: dense, prefix: "hard_sampled.",
              flags: ["--normalizer", "hard-sampled", "--seed", "5"], outputName: "weights"),
    ]

    /// Kernelized and low-rank engines with the fixture's own projections.
    static let linear: [CatalogueEntry] = [
        ("Performer FAVOR+ (orthogonal)", "Choromanski eq. 5", "performer", "basic.", ["--engine", "performer"]),
        ("Performer, i.i.d. features", "Choromanski eq. 5", "performer", "iid.", ["--engine", "performer", "--iid"]),
        ("Performer, D = 59", "Choromanski eq. 5", "performer", "headdim59.", ["--engine", "performer"]),
        ("Performer causal (prefix sums)", "Choromanski §causal", "performer", "causal.", ["--engine", "performer", "--causal", "bottom-right", "--chunk", "4"]),
        ("Performer causal, Tq < Tk", "Choromanski §causal", "performer", "causalprefix.", ["--engine", "performer", "--causal", "bottom-right", "--chunk", "2"]),
        ("RFA (sin/cos features)", "Peng eq. 2–5", "rfa", "basic.", ["--engine", "rfa"]),
        ("RFA causal", "Peng eq. 5", "rfa", "causal.", ["--engine", "rfa", "--causal", "bottom-right", "--chunk", "3"]),
        ("RFA gated", "Peng eq. 7", "rfa", "gated.", ["--engine", "rfa", "--causal", "bottom-right", "--chunk", "3"]),
        ("RFA, D = 59, σ = 1.5", "Peng eq. 2–5", "rfa", "headdim59.", ["--engine", "rfa"]),
        ("linear attention (elu + 1)", "Katharopoulos eq. 6", "elu", "basic.", ["--engine", "elu"]),
        ("linear attention causal", "Katharopoulos eq. 9", "elu", "causal.", ["--engine", "elu", "--causal", "bottom-right", "--chunk", "4"]),
        ("linear attention, RNN form", "Katharopoulos eq. 16–18", "elu", "causalrnn.", ["--engine", "elu", "--causal", "bottom-right", "--chunk", "1"]),
        ("Linformer (E, F)", "Wang eq. 7", "linformer", "separate.", ["--engine", "linformer"]),
        ("Linformer, shared E = F", "Wang eq. 7", "linformer", "shared.", ["--engine", "linformer"]),
        ("Linformer, per-head E, F", "Wang eq. 7", "linformer", "perhead.", ["--engine", "linformer"]),
    ].map { .init(variant: $0.0, reference: $0.1, fixture: "linear_\($0.2).safetensors", prefix: $0.3, flags: $0.4) }

    static let recurrent: [CatalogueEntry] = [
        ("Bahdanau additive (padded)", "Bahdanau eq. 5–6", "bahdanau_padded", ["--layer", "bahdanau"]),
        ("Bahdanau, T = 59", "Bahdanau eq. 5–6", "bahdanau_t59", ["--layer", "bahdanau"]),
        ("Luong global dot", "Luong eq. 7–8", "luong_dot", ["--layer", "luong", "--luong-score", "dot"]),
        ("Luong global general", "Luong eq. 7–8", "luong_general_t59", ["--layer", "luong", "--luong-score", "general"]),
        ("Luong global concat", "Luong eq. 7–8", "luong_concat", ["--layer", "luong", "--luong-score", "concat"]),
        ("Luong local-p", "Luong eq. 9–10", "luong_local_p", ["--layer", "luong", "--window", "predictive:3"]),
        ("Luong local-m", "Luong §3.2", "luong_local_m", ["--layer", "luong", "--luong-score", "dot", "--window", "monotonic:2", "--step-offset", "2"]),
    ].map { .init(variant: $0.0, reference: $0.1, fixture: "recurrent_\($0.2).safetensors", prefix: "", flags: $0.3, outputName: "context") }
}

/// `heed catalogue`: every variant, checked live against its fixture.
struct Catalogue: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every attention variant with a live check against its PyTorch fixture.",
        discussion: """
            Each row runs the variant now (through the same code as `heed attend`) on the
            fixture's inputs and prints the largest absolute difference from PyTorch's output.
            Examples:
              heed catalogue
              heed catalogue --fixtures Tests/Fixtures/attention --json
            """
    )

    @Option(help: "Folder of the committed fixtures.") var fixtures = "Tests/Fixtures/attention"
    @Flag(help: "One JSON object per line instead of a table.") var json = false
    @Option(help: "Largest absolute error that counts as a pass.") var tolerance: Float = 1e-4

    struct Row {
        let entry: CatalogueEntry
        let maxAbsoluteError: Float
    }

    /// Runs one entry: `heed attend`'s path on the fixture inputs, compared with `out`.
    static func check(_ entry: CatalogueEntry, fixtures: String) throws -> Float {
        let url = URL(fileURLWithPath: fixtures).appendingPathComponent(entry.fixture)
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(url: url) } catch { throw CLIError("cannot read fixture \(url.path): \(error)") }
        let attend = try Attend.parse(["--input", url.path, "--output", "-", "--prefix", entry.prefix] + entry.flags)
        guard let actual = try attend.compute(file)[entry.outputName] else { throw CLIError("\(entry.variant): no output \(entry.outputName)") }
        let expected = try file.tensor(entry.prefix + entry.outputName)
        guard expected.shape == actual.shape else { throw CLIError("\(entry.variant): shape \(actual.shape) ≠ \(expected.shape)") }
        return zip(actual.scalars, expected.scalars).reduce(0) { Swift.max($0, Swift.abs($1.0 - $1.1)) }
    }

    func run() throws {
        var failures = 0
        if !json {
            print("Variant".padding(toLength: 36, withPad: " ", startingAt: 0) + "Reference".padding(toLength: 36, withPad: " ", startingAt: 0)
                  + "max |Heed − PyTorch|   check")
        }
        for entry in CatalogueEntries.all {
            let error = try Self.check(entry, fixtures: fixtures)
            let pass = error <= tolerance
            if !pass { failures += 1 }
            let command = (["heed", "attend", "--input", "\(fixtures)/\(entry.fixture)", "--prefix", entry.prefix, "--output", "out.safetensors"] + entry.flags)
                .map { $0.isEmpty ? "''" : $0 }
                .map { $0.contains(" ") || $0.contains("|") ? "'\($0)'" : $0 }.joined(separator: " ")
            if json {
                let object: [String: Any] = ["variant": entry.variant, "reference": entry.reference, "output": entry.outputName,
                                             "command": command,
                                             "max_abs_error": Double(error), "pass": pass]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(entry.variant.padding(toLength: 36, withPad: " ", startingAt: 0)
                      + entry.reference.padding(toLength: 36, withPad: " ", startingAt: 0)
                      + String(format: "%-22.2e", error) + (pass ? "ok" : "FAIL"))
            }
        }
        if !json { print("\n\(CatalogueEntries.all.count - failures) of \(CatalogueEntries.all.count) variants within \(tolerance) of PyTorch") }
        if failures > 0 { throw ExitCode(1) }
    }
}
