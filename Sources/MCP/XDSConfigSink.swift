import EnvoyAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import IstioAPI
import Logging
import Snapshot
import SwiftProtobuf

/// An MCP-over-xDS sink (`xds://host:port`): one state-of-the-world ADS stream to the source,
/// one wildcard subscription per kind plus MeshConfig; every response replaces that kind.
///
/// Reconnects with jittered exponential back-off; resources deleted while disconnected go away
/// with the first full response after reconnecting.
public struct XDSConfigSink: Sendable {
    public var id: String
    public var host: String
    public var port: Int
    public var kinds: [ConfigKind]
    public var revision: String?
    public var maxMessageBytes: Int
    let aggregator: ConfigAggregator
    let logger: Logger

    public init(id: String, host: String, port: Int, aggregator: ConfigAggregator, kinds: [ConfigKind] = ConfigKind.allCases,
                revision: String? = nil, maxMessageBytes: Int = 256 << 20, logger: Logger = Logger(label: "swiftpilot.mcp")) {
        self.id = id
        self.host = host
        self.port = port
        self.aggregator = aggregator
        self.kinds = kinds
        self.revision = revision
        self.maxMessageBytes = maxMessageBytes
        var logger = logger
        logger[metadataKey: "source"] = "\(id)"
        self.logger = logger
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
            let received = await runOnce()
            if received { backoff.reset() }
            let delay = backoff.next()
            logger.warning("MCP stream ended; reconnecting", metadata: ["in_seconds": "\(String(format: "%.2f", delay))"])
            try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
        }
    }

    /// One connection and stream. Returns whether any response arrived.
    func runOnce() async -> Bool {
        let state = StreamState()
        do {
            let transport = try HTTP2ClientTransport.Posix(
                target: .ipv4(host: host, port: port), transportSecurity: .plaintext,
                config: .defaults { $0.connection.maxIdleTime = nil })
            try await withGRPCClient(transport: transport) { client in
                let ads = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: client)
                let (outgoing, send) = AsyncStream<Envoy_Service_Discovery_V3_DiscoveryRequest>.makeStream()
                for (index, typeURL) in ([MCPEnvelope.meshConfigTypeURL] + kinds.map(\.mcpTypeURL)).enumerated() {
                    var request = Envoy_Service_Discovery_V3_DiscoveryRequest()
                    request.typeURL = typeURL
                    if index == 0 { request.node = node }
                    send.yield(request)
                }
                var options = CallOptions.defaults
                options.maxResponseMessageBytes = maxMessageBytes
                try await ads.streamAggregatedResources(
                    request: StreamingClientRequest { writer in
                        for await request in outgoing { try await writer.write(request) }
                    },
                    options: options
                ) { response in
                    defer { send.finish() }
                    for try await message in response.messages {
                        state.received = true
                        if let reply = handle(message) { send.yield(reply) }
                    }
                }
            }
        } catch {
            logger.warning("MCP stream failed", metadata: ["error": "\(error)"])
        }
        return state.received
    }

    final class StreamState: @unchecked Sendable {
        var received = false
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
            let (resources, errors) = try MCPEnvelope.decode(response.resources, kind: kind, location: location, origin: id, revision: revision)
            aggregator.recordRejections(source: id, errors, replacingLocationPrefix: "\(id) \(response.typeURL) ")
            let diff = aggregator.replace(source: id, kind: kind, with: resources)
            logger.info("applied MCP collection", metadata: [
                "type": "\(response.typeURL)", "version": "\(response.versionInfo)", "resources": "\(resources.count)",
                "rejected": "\(errors.count)", "snapshot": "\(diff.isEmpty ? "unchanged" : "v\(diff.to)")",
            ])
            reply.versionInfo = response.versionInfo
            aggregator.markReceived(source: id, version: response.versionInfo, kind: kind)
        } catch {
            logger.error("NACK: undecodable MCP response", metadata: ["type": "\(response.typeURL)", "error": "\(error)"])
            aggregator.recordRejections(source: id, [ConfigDecodingError(location: location, reason: "\(error)")])
            var status = Google_Rpc_Status()
            status.code = Int32(RPCError.Code.invalidArgument.rawValue)
            status.message = "\(location): \(error)"
            reply.errorDetail = status
            reply.versionInfo = aggregator.lastVersion(source: id, kind: kind) ?? ""
        }
        return reply
    }
}
