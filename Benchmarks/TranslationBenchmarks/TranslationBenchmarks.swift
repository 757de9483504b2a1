import Benchmark
import BenchmarkWorkload
import Mesh
import Snapshot
import Synchronization
import Translation
import XDS

/// Translation and encoding of one router's config on the benchmark mesh (every host bound by the
/// Gateway), and what one change costs before any push, at 1,000 and 10,000 services.
/// Run: `swift package benchmark --target TranslationBenchmarks` (Benchmarks/README.md).

/// The inputs of one mesh size, built once on first use (a 10,000-service mesh takes seconds).
final class Inputs: Sendable {
    let proxy = Workload.router(0)
    let snapshot: Snapshot
    let model: MeshModel
    let config: ProxyConfig
    /// A generation whose router config is translated: the one a change is brought forward from.
    let base: ConfigGeneration
    let movedEndpoint: Snapshot
    let editedRoute: Snapshot

    init(services: Int) {
        let workload = Workload(services: services, endpointsPerService: 4)
        let snapshot = workload.snapshot()
        self.snapshot = snapshot
        model = MeshModel(snapshot: snapshot)
        config = Translator.config(for: proxy, in: model)
        base = ConfigGeneration(snapshot: snapshot)
        _ = base.config(for: proxy)
        (movedEndpoint, editedRoute) = workload.singleChanges(of: snapshot)
    }

    private static let built = Mutex<[Int: Inputs]>([:])

    static func of(services: Int) -> Inputs {
        if let known = built.withLock({ $0[services] }) { return known }
        let inputs = Inputs(services: services)
        built.withLock { $0[services] = inputs }
        return inputs
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident],
        warmupIterations: 1,
        maxDuration: .seconds(10),
        maxIterations: 20
    )
    for services in [1000, 10000] {
        let size = "\(services) services"
        Benchmark("MeshModel(snapshot:), \(size)") { benchmark in
            let inputs = Inputs.of(services: services)
            benchmark.startMeasurement()
            blackHole(MeshModel(snapshot: inputs.snapshot))
        }
        Benchmark("Translator.config(router), \(size)") { benchmark in
            let inputs = Inputs.of(services: services)
            benchmark.startMeasurement()
            blackHole(Translator.config(for: inputs.proxy, in: inputs.model))
        }
        Benchmark("EncodedConfig(translated router config), \(size)") { benchmark in
            let inputs = Inputs.of(services: services)
            benchmark.startMeasurement()
            blackHole(EncodedConfig(inputs.config))
        }
        Benchmark("next generation, one endpoint moved, \(size)") { benchmark in
            let inputs = Inputs.of(services: services)
            benchmark.startMeasurement()
            blackHole(ConfigGeneration(snapshot: inputs.movedEndpoint, previous: inputs.base).config(for: inputs.proxy))
        }
        Benchmark("next generation, one VirtualService edited, \(size)") { benchmark in
            let inputs = Inputs.of(services: services)
            benchmark.startMeasurement()
            blackHole(ConfigGeneration(snapshot: inputs.editedRoute, previous: inputs.base).config(for: inputs.proxy))
        }
    }
}
