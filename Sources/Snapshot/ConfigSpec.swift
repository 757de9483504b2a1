import Foundation
import IstioAPI
import SwiftProtobuf

public typealias VirtualService = Istio_Networking_V1alpha3_VirtualService
public typealias DestinationRule = Istio_Networking_V1alpha3_DestinationRule
public typealias Gateway = Istio_Networking_V1alpha3_Gateway
public typealias ServiceEntry = Istio_Networking_V1alpha3_ServiceEntry
public typealias WorkloadEntry = Istio_Networking_V1alpha3_WorkloadEntry
public typealias WorkloadGroup = Istio_Networking_V1alpha3_WorkloadGroup
public typealias Sidecar = Istio_Networking_V1alpha3_Sidecar
public typealias EnvoyFilter = Istio_Networking_V1alpha3_EnvoyFilter
public typealias PeerAuthentication = Istio_Security_V1beta1_PeerAuthentication

/// The typed body of one Istio config resource.
public enum ConfigSpec: Sendable, Equatable {
    case virtualService(VirtualService)
    case destinationRule(DestinationRule)
    case gateway(Gateway)
    case serviceEntry(ServiceEntry)
    case workloadEntry(WorkloadEntry)
    case workloadGroup(WorkloadGroup)
    case sidecar(Sidecar)
    case envoyFilter(EnvoyFilter)
    case peerAuthentication(PeerAuthentication)

    public var kind: ConfigKind {
        switch self {
        case .virtualService: .virtualService
        case .destinationRule: .destinationRule
        case .gateway: .gateway
        case .serviceEntry: .serviceEntry
        case .workloadEntry: .workloadEntry
        case .workloadGroup: .workloadGroup
        case .sidecar: .sidecar
        case .envoyFilter: .envoyFilter
        case .peerAuthentication: .peerAuthentication
        }
    }

    public var message: any SwiftProtobuf.Message {
        switch self {
        case .virtualService(let m): m
        case .destinationRule(let m): m
        case .gateway(let m): m
        case .serviceEntry(let m): m
        case .workloadEntry(let m): m
        case .workloadGroup(let m): m
        case .sidecar(let m): m
        case .envoyFilter(let m): m
        case .peerAuthentication(let m): m
        }
    }

    static func messageType(of kind: ConfigKind) -> any SwiftProtobuf.Message.Type {
        switch kind {
        case .virtualService: VirtualService.self
        case .destinationRule: DestinationRule.self
        case .gateway: Gateway.self
        case .serviceEntry: ServiceEntry.self
        case .workloadEntry: WorkloadEntry.self
        case .workloadGroup: WorkloadGroup.self
        case .sidecar: Sidecar.self
        case .envoyFilter: EnvoyFilter.self
        case .peerAuthentication: PeerAuthentication.self
        }
    }

    init(kind: ConfigKind, message: any SwiftProtobuf.Message) {
        switch kind {
        case .virtualService: self = .virtualService(message as! VirtualService)
        case .destinationRule: self = .destinationRule(message as! DestinationRule)
        case .gateway: self = .gateway(message as! Gateway)
        case .serviceEntry: self = .serviceEntry(message as! ServiceEntry)
        case .workloadEntry: self = .workloadEntry(message as! WorkloadEntry)
        case .workloadGroup: self = .workloadGroup(message as! WorkloadGroup)
        case .sidecar: self = .sidecar(message as! Sidecar)
        case .envoyFilter: self = .envoyFilter(message as! EnvoyFilter)
        case .peerAuthentication: self = .peerAuthentication(message as! PeerAuthentication)
        }
    }

    /// Decodes a protobuf-encoded body. Unknown fields are kept (old producers send removed fields).
    public init(kind: ConfigKind, serializedBytes bytes: Data) throws {
        let message = try Self.messageType(of: kind).init(serializedBytes: bytes, extensions: nil, partial: true, options: BinaryDecodingOptions())
        self.init(kind: kind, message: message)
    }

    /// Decodes the proto3 JSON form of a body (what Istio YAML's `spec` is). Unknown fields are errors.
    public init(kind: ConfigKind, jsonUTF8Bytes bytes: Data) throws {
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = false
        let message = try Self.messageType(of: kind).init(jsonUTF8Bytes: bytes, extensions: nil, options: options)
        self.init(kind: kind, message: message)
    }

    /// Deterministic protobuf encoding of the body.
    public func serializedBytes() -> Data {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        return (try? message.serializedBytes(options: options)) ?? Data()
    }

    /// The body as an `Any` with the canonical type URL (``ConfigKind/bodyTypeURL``).
    public func packedAny() -> Google_Protobuf_Any {
        var any = Google_Protobuf_Any()
        any.typeURL = kind.bodyTypeURL
        any.value = serializedBytes()
        return any
    }

    public static func == (lhs: ConfigSpec, rhs: ConfigSpec) -> Bool {
        lhs.kind == rhs.kind && lhs.message.isEqualTo(message: rhs.message)
    }
}
