import EnvoyAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import IstioAPI
import Logging
import Snapshot
import SwiftProtobuf
import Synchronization

/// An MCP-over-xDS sink (`xds://host:port`): one state-of-the-world ADS stream to the source,
/// one wildcard subscription per kind (and per requested API version) plus MeshConfig.
///
/// Every response is the complete set of its type: what the source no longer lists is deleted.
/// When a kind is requested under several API versions, the kind's content is the union of the
/// latest answers (a Nacos-style server answers only `v1alpha3`, an istiod-style one any).
/// Reconnects with jittered exponential back-off; resources deleted while disconnected go away
/// with the first response after reconnecting.
public final class XDSConfigSink: Sendable {
    public let id: String
    public let connection: SourceConnection
    public let revision: String?
    let aggregator: ConfigAggregator
    let logger: Logger
    private let received = Mutex<[ConfigKind: [String: [ConfigResource]]]>([:])
    /// Per type URL, the resources of its last response by envelope bytes (see ``MCPEnvelope``).
    private let decodedByTypeURL = Mutex<[String: [Data: ConfigResource]]>([:])

    public init(id: String, connection: SourceConnection, aggregator: ConfigAggregator, revision: String? = nil,
                logger: Logger = Logger(label: "swiftpilot.mcp")) {
        self.id = id
        self.connection = connection
        self.aggregator = aggregator
        self.revision = revision
        var logger = logger
        logger[metadataKey: "source"] = "\(id)"
        self.logger = logger
    }

    /// Kinds this sink asks for (EnvoyFilter only exists as v1alpha3).
    public var kinds: [ConfigKind] { connection.kinds }

    /// The type URLs requested, MeshConfig first.
    public var typeURLs: [String] {
        var urls = [MCPEnvelope.meshConfigTypeURL]
        for kind in kinds {
            let versions = kind == .envoyFilter ? ["v1alpha3"] : connection.versions
            for url in versions.map(kind.mcpTypeURL(version:)) where !urls.contains(url) { urls.append(url) }
        }
        return urls
    }

    /// The node this sink presents (Istio's shape: `GENERATOR=api`).
    var node: Envoy_Config_Core_V3_Node {
        var node = Envoy_Config_Core_V3_Node()
        node.id = "sidecar~127.0.0.1~swiftpilot.istio-system~istio-system.svc.cluster.local"
        var generator = Google_Protobuf_Value()
        generator.stringValue = "api"
        node.metadata.fields["GENERATOR"] = generator
        if let revision {
            var value = Google_Protobuf_Value()
            value.stringValue = revision
            node.metadata.fields["ISTIO_REVISION"] = value
        }
        node.userAgentName = "swiftpilot"
        return node
    }

    /// Runs until cancelled, reconnecting as needed.
    public func run() async {
        var backoff = Backoff()
        while !Task.isCancelled {
            let receivedAny = await runOnce()
            if Task.isCancelled { return }
            if receivedAny { backoff.reset() }
            let delay = backoff.next()
            logger.warning("MCP stream ended; reconnecting", metadata: ["in_seconds": "\(String(format: "%.2f", delay))"])
            try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
        }
    }

    /// One connection and stream. Returns whether any response arrived.
    func runOnce() async -> Bool {
        let receivedAny = Flag()
        do {
            let transport = try connection.makeTransport()
            try await withGRPCClient(transport: transport) { client in
                let ads = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: client)
                let (outgoing, send) = AsyncStream<Envoy_Service_Discovery_V3_DiscoveryRequest>.makeStream()
                for (index, typeURL) in typeURLs.enumerated() {
                    var request = Envoy_Service_Discovery_V3_DiscoveryRequest()
                    request.typeURL = typeURL
                    if index == 0 { request.node = node }
                    send.yield(request)
                }
                var options = CallOptions.defaults
                options.maxResponseMessageBytes = connection.maxMessageBytes
                try await ads.streamAggregatedResources(
                    request: StreamingClientRequest { writer in
                        for await request in outgoing { try await writer.write(request) }
                    },
                    options: options
                ) { response in
                    defer { send.finish() }
                    for try await message in response.messages {
                        if !receivedAny.set() {
                            self.logger.info("MCP stream established", metadata: ["address": "\(self.connection.host):\(self.connection.port)"])
                        }
                        if let reply = self.handle(message) { send.yield(reply) }
                    }
                }
            }
        } catch where Task.isCancelled {
            return receivedAny.value
        } catch {
            logger.warning("MCP stream failed", metadata: ["error": "\(error)"])
        }
        return receivedAny.value
    }

    /// Applies one response and returns the ACK or NACK to send (nil for MeshConfig, as istiod does).
    func handle(_ response: Envoy_Service_Discovery_V3_DiscoveryResponse) -> Envoy_Service_Discovery_V3_DiscoveryRequest? {
        if response.typeURL == MCPEnvelope.meshConfigTypeURL { return nil }
        var reply = Envoy_Service_Discovery_V3_DiscoveryRequest()
        reply.typeURL = response.typeURL
        reply.responseNonce = response.nonce
        reply.node = node
        guard let kind = ConfigKind(mcpTypeURL: response.typeURL) else {
            reply.versionInfo = response.versionInfo
            return reply
        }
        let location = "\(id) \(response.typeURL) version \(response.versionInfo)"
        do {
            let previous = decodedByTypeURL.withLock { $0[response.typeURL] }
            var cache = previous ?? [:]
            let decoded = try MCPEnvelope.decodeChanges(response.resources, kind: kind, location: location, origin: id,
                                                        revision: revision, reusing: &cache)
            let (resources, errors) = (decoded.resources, decoded.errors)
            decodedByTypeURL.withLock { $0[response.typeURL] = cache }
            aggregator.recordRejections(source: id, scope: "decode:\(response.typeURL)", errors)
            // The kind's content is the union of its type URLs' latest answers; nil when this type URL
            // is the kind's only one (the content is this answer).
            let union = received.withLock { received -> [ConfigResource]? in
                received[kind, default: [:]][response.typeURL] = resources
                guard received[kind]!.count > 1 else { return nil }
                var byName: [String: ConfigResource] = [:]
                for typeURL in received[kind]!.keys.sorted().reversed() {  // v1 before v1beta1 before v1alpha3
                    for resource in received[kind]![typeURL]! where byName[resource.key.resourceName] == nil {
                        byName[resource.key.resourceName] = resource
                    }
                }
                return Array(byName.values)
            }
            let diff: SnapshotDiff
            if union == nil, previous != nil {
                // What changed since this type URL's previous answer, which the aggregator holds: a
                // source re-publishing thousands of resources with one change costs one change.
                diff = aggregator.patch(source: id, kind: kind, upsert: decoded.fresh, remove: decoded.removed)
            } else {
                diff = aggregator.replace(source: id, kind: kind, with: union ?? resources)
            }
            logger.info("applied MCP collection", metadata: [
                "type": "\(response.typeURL)", "version": "\(response.versionInfo)", "resources": "\(resources.count)",
                "rejected": "\(errors.count)", "snapshot": "\(diff.isEmpty ? "unchanged" : "v\(diff.to)")",
            ])
            reply.versionInfo = response.versionInfo
            aggregator.markReceived(source: id, version: response.versionInfo, kind: kind)
        } catch {
            logger.error("NACK: undecodable MCP response; keeping the last good content", metadata: ["type": "\(response.typeURL)", "error": "\(error)"])
            aggregator.recordRejections(source: id, scope: "decode:\(response.typeURL)", [ConfigDecodingError(location: location, reason: "\(error)")])
            // The source did answer: the kind counts as synced (as istiod does), with its last good content.
            aggregator.markSynced(source: id, kind: kind)
            var status = Google_Rpc_Status()
            status.code = Int32(RPCError.Code.invalidArgument.rawValue)
            status.message = "\(location): \(error)"
            reply.errorDetail = status
            reply.versionInfo = aggregator.lastVersion(source: id, kind: kind) ?? ""
        }
        return reply
    }
}

/// A flag set once, readable from any task.
final class Flag: Sendable {
    private let storage = Atomic<Bool>(false)
    /// Sets the flag; returns whether it was already set.
    func set() -> Bool { storage.exchange(true, ordering: .relaxed) }
    var value: Bool { storage.load(ordering: .relaxed) }
}
