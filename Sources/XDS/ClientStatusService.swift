import EnvoyAPI
import Foundation
import GRPCCore
import SwiftProtobuf

/// `envoy.service.status.v3.ClientStatusDiscoveryService` (CSDS): what each connected proxy was
/// sent and whether it ACKed, from the same state as `/debug/syncz`.
struct ClientStatusService: Envoy_Service_Status_V3_ClientStatusDiscoveryService.SimpleServiceProtocol {
    let status: SyncStatusRegistry
    let broadcaster: GenerationBroadcaster

    func streamClientStatus(request: RPCAsyncSequence<Envoy_Service_Status_V3_ClientStatusRequest, any Error>,
                            response: RPCWriter<Envoy_Service_Status_V3_ClientStatusResponse>, context: ServerContext) async throws {
        for try await next in request { try await response.write(clientStatus(next)) }
    }

    func fetchClientStatus(request: Envoy_Service_Status_V3_ClientStatusRequest, context: ServerContext) async throws -> Envoy_Service_Status_V3_ClientStatusResponse {
        clientStatus(request)
    }

    /// One `ClientConfig` per connected proxy (node matchers on the id's exact value are honoured).
    func clientStatus(_ request: Envoy_Service_Status_V3_ClientStatusRequest) -> Envoy_Service_Status_V3_ClientStatusResponse {
        let wanted: Set<String> = Set(request.nodeMatchers.compactMap { matcher in
            if case .exact(let id)? = matcher.nodeID.matchPattern { return id }
            return nil
        })
        let generation = broadcaster.latest
        var result = Envoy_Service_Status_V3_ClientStatusResponse()
        for (entry, proxy) in status.connections where wanted.isEmpty || wanted.contains(entry.nodeID) {
            var client = Envoy_Service_Status_V3_ClientConfig()
            client.node.id = entry.nodeID
            let config = generation.config(for: proxy)
            for type in XDSType.allCases {
                guard let typeStatus = entry.types[type] else { continue }
                for (name, resource) in config[type].sorted(by: { $0.key < $1.key }) {
                    var generic = Envoy_Service_Status_V3_ClientConfig.GenericXdsConfig()
                    generic.typeURL = type.typeURL
                    generic.name = name
                    generic.versionInfo = typeStatus.sentVersion ?? ""
                    if !request.excludeResourceContents { generic.xdsConfig = resource.any }
                    if let sentAt = typeStatus.sentAt { generic.lastUpdated = Google_Protobuf_Timestamp(date: sentAt) }
                    generic.configStatus = switch typeStatus.state {
                    case "SYNCED": .synced
                    case "NACKED": .error
                    case "STALE": .stale
                    default: .notSent
                    }
                    if let nack = typeStatus.nack {
                        var failure = Envoy_Admin_V3_UpdateFailureState()
                        failure.details = nack
                        generic.errorState = failure
                    }
                    client.genericXdsConfigs.append(generic)
                }
            }
            result.config.append(client)
        }
        return result
    }
}
