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
        .executableTarget(
            name: "heed",
            dependencies: [
                "HeedTensor",
                "HeedAttention",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "HeedBenchmarks",
            dependencies: ["HeedTensor", "HeedAttention", "CBLAS", "CHeedKernels"],
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
        // Runs the built `heed` binary: exit codes, usage messages, the demo.
        .testTarget(
            name: "HeedCLITests",
            dependencies: ["heed", "HeedTensor", "HeedTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
