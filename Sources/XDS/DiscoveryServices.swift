import EnvoyAPI
import GRPCCore
import GRPCProtobuf

/// `envoy.service.discovery.v3.AggregatedDiscoveryService`: every type on one stream.
struct AggregatedDiscoveryService: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.SimpleServiceProtocol {
    let streams: DiscoveryStreams

    /// The generated registration, except that responses are written by
    /// ``EncodedResponseSerializer`` (encoded blocks copied, not re-serialized per proxy), and
    /// state-of-the-world requests are read by ``SotWRequestDeserializer`` (names left encoded).
    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        typealias Methods = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Method
        let streams = self.streams
        router.registerHandler(forMethod: Methods.StreamAggregatedResources.descriptor,
                               deserializer: SotWRequestDeserializer(), serializer: EncodedResponseSerializer<DiscoveryResponse>()) { request, _ in
            StreamingServerResponse(of: SotWResponse.self) { writer in
                try await streams.stateOfTheWorld(request.messages, writer: writer)
                return [:]
            }
        }
        router.registerHandler(forMethod: Methods.DeltaAggregatedResources.descriptor,
                               deserializer: ProtobufDeserializer<DeltaDiscoveryRequest>(), serializer: EncodedResponseSerializer<DeltaDiscoveryResponse>()) { request, _ in
            StreamingServerResponse(of: DeltaResponse.self) { writer in
                try await streams.delta(request.messages, writer: writer)
                return [:]
            }
        }
    }

    func streamAggregatedResources(request: RPCAsyncSequence<DiscoveryRequest, any Error>, response: RPCWriter<DiscoveryResponse>,
                                   context: ServerContext) async throws {
        try await streams.stateOfTheWorld(request, writer: RPCWriter(wrapping: MaterializingWriter(base: response)))
    }

    func deltaAggregatedResources(request: RPCAsyncSequence<DeltaDiscoveryRequest, any Error>, response: RPCWriter<DeltaDiscoveryResponse>,
                                  context: ServerContext) async throws {
        try await streams.delta(request, writer: RPCWriter(wrapping: MaterializingWriter(base: response)))
    }
}

/// Unary fetch (REST-style) is not served: xDS clients use the streaming methods.
private func fetchUnsupported(_ type: XDSType) -> RPCError {
    RPCError(code: .unimplemented, message: "Fetch\(type.shortName) is not served; use the streaming or delta method, or ADS")
}

struct ClusterDiscoveryService: Envoy_Service_Cluster_V3_ClusterDiscoveryService.SimpleServiceProtocol {
    let streams: DiscoveryStreams

    func streamClusters(request: RPCAsyncSequence<DiscoveryRequest, any Error>, response: RPCWriter<DiscoveryResponse>, context: ServerContext) async throws {
        try await streams.stateOfTheWorld(request, writer: RPCWriter(wrapping: MaterializingWriter(base: response)), fixedType: .cluster)
    }

    func deltaClusters(request: RPCAsyncSequence<DeltaDiscoveryRequest, any Error>, response: RPCWriter<DeltaDiscoveryResponse>, context: ServerContext) async throws {
        try await streams.delta(request, writer: RPCWriter(wrapping: MaterializingWriter(base: response)), fixedType: .cluster)
    }

    func fetchClusters(request: DiscoveryRequest, context: ServerContext) async throws -> DiscoveryResponse { throw fetchUnsupported(.cluster) }
}

struct EndpointDiscoveryService: Envoy_Service_Endpoint_V3_EndpointDiscoveryService.SimpleServiceProtocol {
    let streams: DiscoveryStreams

    func streamEndpoints(request: RPCAsyncSequence<DiscoveryRequest, any Error>, response: RPCWriter<DiscoveryResponse>, context: ServerContext) async throws {
        try await streams.stateOfTheWorld(request, writer: RPCWriter(wrapping: MaterializingWriter(base: response)), fixedType: .endpoint)
    }

    func deltaEndpoints(request: RPCAsyncSequence<DeltaDiscoveryRequest, any Error>, response: RPCWriter<DeltaDiscoveryResponse>, context: ServerContext) async throws {
        try await streams.delta(request, writer: RPCWriter(wrapping: MaterializingWriter(base: response)), fixedType: .endpoint)
    }

    func fetchEndpoints(request: DiscoveryRequest, context: ServerContext) async throws -> DiscoveryResponse { throw fetchUnsupported(.endpoint) }
}

struct ListenerDiscoveryService: Envoy_Service_Listener_V3_ListenerDiscoveryService.SimpleServiceProtocol {
    let streams: DiscoveryStreams

    func streamListeners(request: RPCAsyncSequence<DiscoveryRequest, any Error>, response: RPCWriter<DiscoveryResponse>, context: ServerContext) async throws {
        try await streams.stateOfTheWorld(request, writer: RPCWriter(wrapping: MaterializingWriter(base: response)), fixedType: .listener)
    }

    func deltaListeners(request: RPCAsyncSequence<DeltaDiscoveryRequest, any Error>, response: RPCWriter<DeltaDiscoveryResponse>, context: ServerContext) async throws {
        try await streams.delta(request, writer: RPCWriter(wrapping: MaterializingWriter(base: response)), fixedType: .listener)
    }

    func fetchListeners(request: DiscoveryRequest, context: ServerContext) async throws -> DiscoveryResponse { throw fetchUnsupported(.listener) }
}

struct RouteDiscoveryService: Envoy_Service_Route_V3_RouteDiscoveryService.SimpleServiceProtocol {
    let streams: DiscoveryStreams

    func streamRoutes(request: RPCAsyncSequence<DiscoveryRequest, any Error>, response: RPCWriter<DiscoveryResponse>, context: ServerContext) async throws {
        try await streams.stateOfTheWorld(request, writer: RPCWriter(wrapping: MaterializingWriter(base: response)), fixedType: .route)
    }

    func deltaRoutes(request: RPCAsyncSequence<DeltaDiscoveryRequest, any Error>, response: RPCWriter<DeltaDiscoveryResponse>, context: ServerContext) async throws {
        try await streams.delta(request, writer: RPCWriter(wrapping: MaterializingWriter(base: response)), fixedType: .route)
    }

    func fetchRoutes(request: DiscoveryRequest, context: ServerContext) async throws -> DiscoveryResponse { throw fetchUnsupported(.route) }
}
