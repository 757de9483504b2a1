import BenchmarkWorkload
import ArgumentParser
import EnvoyAPI
import Foundation
import Mesh
import Snapshot
import SwiftProtobuf
import Translation
import XDS

/// Micro-benchmarks: translation and encoding of one router's config, and the per-proxy cost of a
/// push that changes nothing, at several mesh sizes. Plain timing (median of repetitions).
struct Micro: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "micro", abstract: "Translation and encoding micro-benchmarks.")

    @Option(parsing: .upToNextOption, help: "Mesh sizes (services).") var services: [Int] = [1000, 10000]
    @Option var endpoints = 4
    @Option var repetitions = 5
    @Option var out = "Benchmarks/results"
    @Option var name = "micro"

    func run() async throws {
        var report = Report()
        report.parameters = ["services": services.map(String.init).joined(separator: ","), "endpoints": "\(endpoints)", "repetitions": "\(repetitions)", "proxy": "one router, Gateway binding every host"]
        for size in services {
            let workload = Workload(services: size, endpointsPerService: endpoints)
            let proxy = Workload.router(0)
            let snapshot = workload.snapshot()
            func time<T>(_ body: () -> T) -> (Double, T) {
                var samples: [Double] = []
                var result: T?
                for _ in 0..<repetitions {
                    let start = ContinuousClock.now
                    result = body()
                    samples.append(seconds(ContinuousClock.now - start) * 1000)
                }
                return (samples.sorted()[samples.count / 2], result!)
            }
            let (modelMS, model) = time { MeshModel(snapshot: snapshot) }
            let (clustersMS, clusters) = time { ClusterBuilder.clusters(for: proxy, in: model) }
            let (endpointsMS, _) = time { EndpointBuilder.loadAssignments(for: clusters, in: model, proxy: proxy) }
            let (gatewayMS, servers) = time { GatewayServers(for: proxy, in: model) }
            let (routesMS, _) = time { RouteBuilder.gatewayRoutes(servers, for: proxy, in: model) }
            let (translateMS, config) = time { Translator.config(for: proxy, in: model) }
            let (encodeMS, encoded) = time { EncodedConfig(config) }
            // The ceiling of encoding: serialize the same messages once, no hashing or indexing.
            let messages: [any SwiftProtobuf.Message] = config.clusters + config.endpoints + config.listeners + config.routes
            let (serializeMS, totalBytes) = time { messages.reduce(0) { $0 + Packing.deterministicBytes($1).count } }
            let sizes = XDSType.allCases.map { type in "\(type.shortName) \(encoded[type].count) (\(megabytes(encoded[type].values.reduce(0) { $0 + $1.any.value.count })))" }
            // Per-proxy cost of a push that changes nothing (every proxy runs this on every generation).
            var stream = SotWStream()
            for type in XDSType.allCases {
                var request = DiscoveryRequest()
                request.typeURL = type.typeURL
                if type == .endpoint { request.resourceNames = Array(encoded[.endpoint].keys) }
                if type == .route { request.resourceNames = Array(encoded[.route].keys) }
                _ = stream.handle(request, config: encoded)
            }
            let (noopPushMS, _) = time { stream.push(config: encoded).count }
            let (versionMS, _) = time { XDSType.allCases.map { EncodedConfig.version(of: Array(encoded[$0].values)) }.count }
            // A new generation brought forward from the previous one (what a change costs before
            // any push): one endpoint moved, one VirtualService edited.
            let base = ConfigGeneration(snapshot: snapshot)
            _ = base.config(for: proxy)
            let (movedEndpoint, editedRoute) = workload.singleChanges(of: snapshot)
            let (endpointGenerationMS, _) = time { ConfigGeneration(snapshot: movedEndpoint, previous: base).config(for: proxy) }
            let (routeGenerationMS, _) = time { ConfigGeneration(snapshot: editedRoute, previous: base).config(for: proxy) }
            // The endpoint move's generation step by step.
            let baseConfig = base.config(for: proxy)
            let (movedModelMS, movedModel) = time { MeshModel(snapshot: movedEndpoint, previous: base.model) }
            let (movedChangeMS, movedChange) = time { MeshChange(from: base.model, to: movedModel) }
            let (movedUpdateMS, movedUpdate) = time {
                Translator.update(for: proxy, in: movedModel, change: movedChange, edsClusters: baseConfig[.endpoint].keys)
            }
            let (movedApplyMS, _) = time { movedUpdate.map { baseConfig.applying($0) } }
            // The VirtualService edit's generation step by step (the routes memo carried, as a
            // generation carries it).
            let (editedModelMS, editedModel) = time { MeshModel(snapshot: editedRoute, previous: base.model) }
            let (editedChangeMS, editedChange) = time { MeshChange(from: base.model, to: editedModel) }
            let (editedUpdateMS, editedUpdate) = time {
                Translator.update(for: proxy, in: editedModel, change: editedChange, edsClusters: baseConfig[.endpoint].keys,
                                  memo: RouteMemo(carrying: base.routeMemo))
            }
            let (editedApplyMS, _) = time { editedUpdate.map { baseConfig.applying($0) } }
            // Per-proxy cold sync in the state machines (requests as Envoy sends them, each response
            // ACKed) and serializing what they send: state of the world vs delta with VHDS.
            let sotwSubscriptions: [(XDSType, [String])] = [(.cluster, []), (.endpoint, Array(encoded[.endpoint].keys)), (.listener, []), (.route, Array(encoded[.route].keys))]
            let (sotwSyncMS, sotwResponses) = time { () -> [SotWResponse] in
                var sotw = SotWStream()
                return sotwSubscriptions.flatMap { type, names -> [SotWResponse] in
                    var request = DiscoveryRequest()
                    request.typeURL = type.typeURL
                    request.resourceNames = names
                    let responses = sotw.handle(request, config: encoded)
                    for response in responses {
                        request.typeURL = response.typeURL
                        request.responseNonce = response.nonce
                        request.versionInfo = response.versionInfo
                        _ = sotw.handle(request, config: encoded)
                    }
                    return responses
                }
            }
            let (deltaSyncMS, deltaResponses) = time { () -> [DeltaResponse] in
                var delta = DeltaStream(virtualHostDiscovery: true)
                return (sotwSubscriptions + [(.virtualHost, [])]).flatMap { type, names -> [DeltaResponse] in
                    var request = DeltaDiscoveryRequest()
                    request.typeURL = type.typeURL
                    request.resourceNamesSubscribe = names
                    let responses = delta.handle(request, config: encoded)
                    for response in responses {
                        var ack = DeltaDiscoveryRequest()
                        ack.typeURL = response.typeURL
                        ack.responseNonce = response.nonce
                        _ = delta.handle(ack, config: encoded)
                    }
                    return responses
                }
            }
            let (sotwSerializeMS, sotwBytes) = time { sotwResponses.reduce(0) { $0 + ((try? $1.serializedBytes() as [UInt8])?.count ?? 0) } }
            let (deltaSerializeMS, deltaBytes) = time { deltaResponses.reduce(0) { $0 + ((try? $1.serializedBytes() as [UInt8])?.count ?? 0) } }
            let label = "\(size) services"
            report.add(Row(benchmark: "micro \(label)", metric: "resources", value: sizes.joined(separator: "; ")))
            report.add(Row(benchmark: "micro \(label)", metric: "MeshModel(snapshot:)", value: String(format: "%.1f ms", modelMS), numbers: ["ms": modelMS]))
            report.add(Row(benchmark: "micro \(label)", metric: "translate: clusters / endpoints / gateway servers / routes / total",
                           value: String(format: "%.1f / %.1f / %.1f / %.1f / %.1f ms", clustersMS, endpointsMS, gatewayMS, routesMS, translateMS),
                           numbers: ["clusters": clustersMS, "endpoints": endpointsMS, "gateway": gatewayMS, "routes": routesMS, "total": translateMS]))
            report.add(Row(benchmark: "micro \(label)", metric: "next generation brought forward (model + change + rebuild + encode): one endpoint moved / one VirtualService edited",
                           value: String(format: "%.1f / %.1f ms", endpointGenerationMS, routeGenerationMS),
                           numbers: ["endpointGeneration": endpointGenerationMS, "routeGeneration": routeGenerationMS]))
            report.add(Row(benchmark: "micro \(label)", metric: "one endpoint moved, step by step: MeshModel / MeshChange / Translator.update / EncodedConfig.applying",
                           value: String(format: "%.2f / %.2f / %.2f / %.2f ms", movedModelMS, movedChangeMS, movedUpdateMS, movedApplyMS),
                           numbers: ["model": movedModelMS, "change": movedChangeMS, "update": movedUpdateMS, "apply": movedApplyMS]))
            report.add(Row(benchmark: "micro \(label)", metric: "one VirtualService edited, step by step: MeshModel / MeshChange / Translator.update / EncodedConfig.applying",
                           value: String(format: "%.2f / %.2f / %.2f / %.2f ms", editedModelMS, editedChangeMS, editedUpdateMS, editedApplyMS),
                           numbers: ["model": editedModelMS, "change": editedChangeMS, "update": editedUpdateMS, "apply": editedApplyMS]))
            report.add(Row(benchmark: "micro \(label)", metric: "encode: EncodedConfig(config) vs plain serialization (ceiling)",
                           value: String(format: "%.1f ms vs %.1f ms (%.2f×) for %@ (%.0f MB/s plain)", encodeMS, serializeMS, encodeMS / serializeMS, megabytes(totalBytes), Double(totalBytes) / 1_048_576 / (serializeMS / 1000)),
                           numbers: ["encode": encodeMS, "serialize": serializeMS, "bytes": Double(totalBytes)]))
            report.add(Row(benchmark: "micro \(label)", metric: "SotWStream.push with unchanged config, per proxy (× proxies per generation)",
                           value: String(format: "%.2f ms per proxy = %.1f s per 1,000 proxies; of which EncodedConfig.version(of:) over all types %.2f ms", noopPushMS, noopPushMS, versionMS),
                           numbers: ["noopPush": noopPushMS, "version": versionMS]))
            report.add(Row(benchmark: "micro \(label)", metric: "cold sync of one proxy, state machine + serializing its responses: SotW / delta with VHDS",
                           value: String(format: "%.1f + %.1f ms (%@) / %.1f + %.1f ms (%@)", sotwSyncMS, sotwSerializeMS, megabytes(sotwBytes),
                                         deltaSyncMS, deltaSerializeMS, megabytes(deltaBytes)),
                           numbers: ["sotwSync": sotwSyncMS, "sotwSerialize": sotwSerializeMS, "deltaSync": deltaSyncMS, "deltaSerialize": deltaSerializeMS]))
        }
        try report.write(to: out, name: name)
    }
}
