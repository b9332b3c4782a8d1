// swift-tools-version:6.1
import PackageDescription

// Heed: the attention toolkit for Swift.
// No unsafe build flags anywhere: hot loops live in OpenBLAS (CBLAS) or in CHeedKernels,
// whose functions carry their own target attributes and dispatch at run time.
let package = Package(
    name: "Heed",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "HeedTensor", targets: ["HeedTensor"]),
        .library(name: "HeedAttention", targets: ["HeedAttention"]),
        .library(name: "HeedNN", targets: ["HeedNN"]),
        .executable(name: "heed", targets: ["heed"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenBLAS on Linux (Debian: libopenblas-dev), Accelerate on Apple platforms.
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Hand-written SIMD kernels: AVX2+FMA with run-time dispatch, portable fallback.
        .target(name: "CHeedKernels"),
        .target(
            name: "HeedTensor",
            dependencies: ["CBLAS", "CHeedKernels"],
            linkerSettings: [
                .linkedLibrary("openblas", .when(platforms: [.linux])),
                .linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS])),
            ]
        ),
        // Every attention mechanism: Score → Bias → Pattern → Normalizer → weighted sum.
        .target(name: "HeedAttention", dependencies: ["HeedTensor", "CHeedKernels"]),
        // Pretrained models: GGUF reading and dequantisation, tokenizers (WordPiece, byte-level BPE).
        .target(name: "HeedModels", dependencies: ["HeedTensor", "HeedAttention", "HeedNN", "CBLAS", "CHeedKernels"]),
        // Layers and Transformer models built on the attention catalogue.
        .target(name: "HeedNN", dependencies: ["HeedTensor", "HeedAttention"]),
        .executableTarget(
            name: "heed",
            dependencies: [
                "HeedTensor",
                "HeedAttention",
                "HeedModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "HeedBenchmarks",
            dependencies: ["HeedTensor", "HeedAttention", "HeedNN", "HeedModels", "CBLAS", "CHeedKernels"],
            path: "Benchmarks/HeedBenchmarks"
        ),
        // Shared test helpers: assertClose, gradient checks, seeded tensors, fixtures.
        .target(
            name: "HeedTestSupport",
            dependencies: ["HeedTensor"],
            path: "Tests/HeedTestSupport"
        ),
        .testTarget(
            name: "HeedTensorTests",
            dependencies: ["HeedTensor", "CHeedKernels", "HeedTestSupport"]
        ),
        .testTarget(
            name: "HeedAttentionTests",
            dependencies: ["HeedAttention", "HeedTensor", "CHeedKernels", "HeedTestSupport"]
        ),
        .testTarget(
            name: "HeedModelsTests",
            dependencies: ["HeedModels", "HeedNN", "HeedTensor", "HeedTestSupport", "CHeedKernels"]
        ),
        .testTarget(
            name: "HeedNNTests",
            dependencies: ["HeedNN", "HeedTensor", "HeedTestSupport"]
        ),
        // Runs the built `heed` binary: exit codes, usage messages, the demo.
        .testTarget(
            name: "HeedCLITests",
            dependencies: ["heed", "HeedModels", "HeedTensor", "HeedTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
