// swift-tools-version: 6.1
import PackageDescription

let grpc: [Target.Dependency] = [
    .product(name: "GRPCCore", package: "grpc-swift-2"),
    .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
    .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
]
let protobuf: [Target.Dependency] = [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
let logging: [Target.Dependency] = [.product(name: "Logging", package: "swift-log")]

let package = Package(
    name: "SwiftPilot",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "swiftpilot", targets: ["swiftpilot"]),
        .library(name: "MCP", targets: ["MCP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // Micro-benchmarks (Benchmarks/TranslationBenchmarks); the malloc interposer only (the
        // default's ARC runtime interposer is another package).
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Generated code only (Scripts/generate-protos).
        .target(name: "EnvoyAPI", dependencies: protobuf + grpc),
        .target(name: "IstioAPI", dependencies: ["EnvoyAPI"] + protobuf + grpc),

        .target(name: "Snapshot", dependencies: ["IstioAPI"] + protobuf + logging),
        .target(
            name: "MCP",
            dependencies: ["EnvoyAPI", "IstioAPI", "Snapshot", .product(name: "Yams", package: "Yams"),
                           .product(name: "Metrics", package: "swift-metrics")] + protobuf + grpc + logging
        ),
        .target(name: "Mesh", dependencies: ["IstioAPI", "Snapshot"] + protobuf),
        .target(name: "Translation", dependencies: ["EnvoyAPI", "IstioAPI", "Mesh"] + protobuf),
        .target(
            name: "XDS",
            dependencies: ["EnvoyAPI", "Snapshot", "Mesh", "Translation",
                           .product(name: "Metrics", package: "swift-metrics"),
                           .product(name: "NIOCore", package: "swift-nio")] + protobuf + grpc + logging
        ),
        .target(
            name: "Admin",
            dependencies: ["Snapshot", "XDS", "MCP",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Prometheus", package: "swift-prometheus")] + logging
        ),
        .executableTarget(
            name: "swiftpilot",
            dependencies: ["MCP", "Snapshot", "Mesh", "Translation", "XDS", "Admin",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "Metrics", package: "swift-metrics"),
                           .product(name: "Prometheus", package: "swift-prometheus")] + grpc + logging
        ),
        // Benchmarks are not tests: a load generator and micro-benchmarks that print numbers (Benchmarks/README.md).
        .target(
            name: "BenchmarkWorkload",
            dependencies: ["MCP", "Snapshot", "Mesh", "IstioAPI"] + protobuf,
            path: "Benchmarks/Workload"
        ),
        .executableTarget(
            name: "swiftpilot-loadgen",
            dependencies: ["BenchmarkWorkload", "MCP", "Snapshot", "Mesh", "Translation", "XDS", "EnvoyAPI", "IstioAPI",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                           .product(name: "NIOHPACK", package: "swift-nio-http2")] + grpc + protobuf,
            path: "Benchmarks/LoadGen",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // ordo-one/benchmark: `swift package benchmark --target TranslationBenchmarks`.
        .executableTarget(
            name: "TranslationBenchmarks",
            dependencies: ["BenchmarkWorkload", "Mesh", "Snapshot", "Translation", "XDS",
                           .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/TranslationBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .testTarget(name: "SnapshotTests", dependencies: ["Snapshot", "IstioAPI"]),
        .testTarget(name: "MCPTests", dependencies: ["MCP", "Snapshot", "IstioAPI", "EnvoyAPI"] + grpc, exclude: ["Fixtures"]),
        .testTarget(name: "TranslationTests", dependencies: ["Translation", "Mesh", "MCP", "EnvoyAPI", "IstioAPI"]),
        .testTarget(name: "XDSTests", dependencies: ["XDS", "EnvoyAPI", "Translation", "Mesh", "Snapshot", "MCP"] + grpc),
    ],
    swiftLanguageModes: [.v6]
)
