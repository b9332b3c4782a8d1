import Foundation
import HeedAttention
import HeedTensor
#if canImport(Glibc)
import Glibc
#endif

// `HeedBenchmarks linear`: time and peak memory of the kernelized linear
// attentions (Performer FAVOR+, RFA, elu+1) over doubling lengths, to show
// that they are O(L): time(2L)/time(L) ≈ 2 and memory growing linearly.
//
//     swift run -c release HeedBenchmarks linear [--lengths 1024,2048,...]
//         [--engines performer,rfa,rfa-gated,elu] [--passes forward,forward+backward]
//         [--masks non-causal,causal] [--implementations fused,reference]
//         [--reference-max-length 8192] [--heads 8] [--head-dimension 64]
//
// Shapes: B = 1, H = 8, D = Dv = 64; Performer m = 256 features; RFA m = 128
// frequencies (φ has 2m = 256 entries, the same state size as Performer);
// elu+1 has D = 64 features. Causal runs use the default chunk of 64.
//
// Method: each (engine, mask, pass, implementation, L) is run `warmup` times
// untimed, then `repetitions` times timed. The table reports the median and
// the best wall-clock time and the median CPU time (user + system of the
// whole process, both cores: on a shared machine it shows the work done when
// neighbours stretch the wall clock); "ratio" divides by the same figure at
// L/2 (best wall time, and CPU time). Peak RSS is VmHWM from /proc/self/status over the timed runs: before them,
// glibc is asked to return freed memory (malloc_trim) and the high-water mark
// is reset to the current RSS (writing 5 to /proc/self/clear_refs, Linux ≥
// 4.0). "ΔRSS" is the peak minus the RSS just before the timed runs, which
// already holds the inputs (and, for forward+backward, nothing else).

private struct LinearOptions {
    var lengths = (10...16).map { 1 << $0 }
    var engines = ["performer", "rfa", "rfa-gated", "elu"]
    var passes = ["forward", "forward+backward"]
    var masks = ["non-causal", "causal"]
    var implementations: [KernelizedAttention.Implementation] = [.fused, .reference]
    /// The reference path is slow (its causal backward is not O(L)); it runs up to this length.
    var referenceMaxLength = 8192
    var heads = 8
    var headDimension = 64

    init(_ arguments: [String]) {
        var index = 0
        func value() -> String {
            index += 1
            guard index < arguments.count else { fail("missing value after \(arguments[index - 1])") }
            return arguments[index]
        }
        func list() -> [String] { value().split(separator: ",").map(String.init) }
        func int(_ text: String) -> Int {
            guard let number = Int(text), number >= 1 else { fail("not a positive integer: \(text)") }
            return number
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--lengths": lengths = list().map(int)
            case "--engines": engines = list()
            case "--passes": passes = list()
            case "--masks": masks = list()
            case "--implementations":
                implementations = list().map {
                    switch $0 {
                    case "fused": return .fused
                    case "reference": return .reference
                    default: fail("unknown implementation \($0) (fused, reference)")
                    }
                }
            case "--reference-max-length": referenceMaxLength = int(value())
            case "--heads": heads = int(value())
            case "--head-dimension": headDimension = int(value())
            default: fail("unknown option \(arguments[index])")
            }
            index += 1
        }
        for engine in engines where !["performer", "rfa", "rfa-gated", "elu"].contains(engine) { fail("unknown engine \(engine)") }
        for pass in passes where !["forward", "forward+backward"].contains(pass) { fail("unknown pass \(pass)") }
        for mask in masks where !["non-causal", "causal"].contains(mask) { fail("unknown mask \(mask)") }
    }
}

private func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("HeedBenchmarks linear: \(message)\n".utf8))
    exit(2)
}

/// A field of /proc/self/status in MiB (VmRSS, VmHWM); nan where unreadable.
private func statusMebibytes(_ field: String) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return .nan }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        let digits = line.dropFirst(field.count + 1).filter { $0.isNumber }
        return (Double(String(digits)) ?? .nan) / 1024   // the kernel reports kB
    }
    return .nan
}

/// User + system CPU seconds of this process so far (all threads).
private func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Returns freed heap memory to the system and resets VmHWM to the current RSS.
private func resetPeakMemory() {
    #if canImport(Glibc)
    // malloc_trim lives in <malloc.h>, which the Glibc module does not export: look it up.
    typealias MallocTrim = @convention(c) (Int) -> Int32
    if let symbol = dlsym(nil, "malloc_trim") { _ = unsafeBitCast(symbol, to: MallocTrim.self)(0) }
    #endif
    if let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
        handle.write(Data("5".utf8))
        try? handle.close()
    }
}

/// One attention call of an engine on given inputs.
private typealias LinearCall = (_ q: Tensor, _ k: Tensor, _ v: Tensor, _ gateInput: Tensor?, _ causal: Bool) -> Tensor

private func makeEngine(_ name: String, _ implementation: KernelizedAttention.Implementation,
                        heads: Int, headDimension d: Int) -> LinearCall {
    switch name {
    case "performer":
        var performer = Performer(features: 256, headDimension: d, seed: 1)
        performer.implementation = implementation
        return { q, k, v, _, causal in performer(query: q, key: k, value: v, causal: causal) }
    case "rfa", "rfa-gated":
        var rfa = RandomFeatureAttention(features: 128, headDimension: d, seed: 2)
        rfa.implementation = implementation
        if name == "rfa-gated" {
            // Bias 3: g ≈ 0.95, a memory of about 20 steps.
            rfa.gate = .init(weight: Tensor.randomNormal([heads, d], std: 0.05, seed: 3, requiresGrad: true),
                             bias: Tensor(Array(repeating: 3, count: heads), requiresGrad: true))
        }
        return { q, k, v, x, causal in rfa(query: q, key: k, value: v, causal: causal, gateInput: x) }
    default:
        var linear = LinearAttention()
        linear.implementation = implementation
        return { q, k, v, _, causal in linear(query: q, key: k, value: v, causal: causal) }
    }
}

func runLinearBenchmark(_ arguments: [String]) {
    let options = LinearOptions(arguments)
    let (h, d) = (options.heads, options.headDimension)
    print("\n## Linear attention engines (B = 1, H = \(h), D = Dv = \(d); Performer m = 256, RFA m = 128 (256 features), elu+1 \(d) features; causal chunk 64)")
    print("wall ms: median / best of the timed runs; CPU ms: median (user + system, all threads); ratio: time(L) / time(L/2) of "
          + "the best wall time and of the CPU time; peak = VmHWM during the timed runs, Δ = peak − RSS before them (inputs included in RSS)")
    print("| engine | mask | pass | implementation | L | wall ms | CPU ms | ratio wall / CPU | peak RSS MiB | ΔRSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for engineName in options.engines {
        for mask in options.masks {
            if engineName == "rfa-gated" && mask == "non-causal" { continue }   // the gate is causal only
            let causal = mask == "causal"
            for pass in options.passes {
                for implementation in options.implementations {
                    let engine = makeEngine(engineName, implementation, heads: h, headDimension: d)
                    var previous: (wall: Double, cpu: Double)?
                    for length in options.lengths {
                        if implementation == .reference && length > options.referenceMaxLength { break }
                        let backward = pass == "forward+backward"
                        let q = Tensor.randomNormal([1, h, length, d], std: 0.5, seed: 10, requiresGrad: backward)
                        let k = Tensor.randomNormal([1, h, length, d], std: 0.5, seed: 11, requiresGrad: backward)
                        let v = Tensor.randomNormal([1, h, length, d], seed: 12, requiresGrad: backward)
                        let x = engineName == "rfa-gated" ? Tensor.randomNormal([1, 1, length, d], seed: 13, requiresGrad: backward) : nil
                        let seed = backward ? Tensor.randomNormal([1, h, length, d], seed: 14) : nil
                        // Forward alone is inference: nothing is recorded (the gate's parameters
                        // require gradients, and an unused tape would only be freed by backward()).
                        let run = {
                            guard let seed else {
                                _ = Tensor.withoutGrad { engine(q, k, v, x, causal) }
                                return
                            }
                            engine(q, k, v, x, causal).backward(seed)
                            for input in [q, k, v] { input.grad = nil }
                            x?.grad = nil
                        }
                        let (warmup, repetitions) = length >= 16384 ? (1, 5) : (2, 7)
                        for _ in 0..<warmup { run() }
                        resetPeakMemory()
                        let before = statusMebibytes("VmRSS")
                        var (wall, cpu): ([Double], [Double]) = ([], [])
                        for _ in 0..<repetitions {
                            let cpuStart = cpuSeconds()
                            wall += timeRuns(repetitions: 1, warmup: 0, run)
                            cpu.append(cpuSeconds() - cpuStart)
                        }
                        let peak = statusMebibytes("VmHWM")
                        let (best, cpuMedian) = (wall.best * 1e3, cpu.median * 1e3)
                        let ratio = previous.map { "\(format(best / $0.wall, 2)) / \(format(cpuMedian / $0.cpu, 2))" } ?? "—"
                        previous = (best, cpuMedian)
                        print("| \(engineName) | \(mask) | \(pass) | \(implementation) | \(length) | \(format(wall.median * 1e3, 1)) / \(format(best, 1)) "
                              + "| \(format(cpuMedian, 1)) | \(ratio) | \(format(peak, 0)) | \(format(peak - before, 0)) |")
                    }
                }
            }
        }
    }
}
