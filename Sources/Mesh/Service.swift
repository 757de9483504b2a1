import IstioAPI
import Snapshot

/// One hostname of a ServiceEntry, with its ports and endpoints.
public struct Service: Sendable, Equatable {
    public enum Resolution: Sendable, Equatable {
        /// Original destination (`NONE`); routers treat it as EDS with no endpoints.
        case passthrough
        /// `STATIC`: endpoints by IP, delivered over EDS.
        case staticEndpoints
        /// `DNS`: STRICT_DNS.
        case dns
        /// `DNS_ROUND_ROBIN`: LOGICAL_DNS.
        case dnsRoundRobin
    }

    public struct Port: Sendable, Equatable, Hashable {
        public var number: UInt32
        public var name: String
        public var `protocol`: String
        public var targetPort: UInt32
    }

    public struct Endpoint: Sendable, Equatable {
        public var address: String
        /// Per service-port-name overrides (`WorkloadEntry.ports`).
        public var ports: [String: UInt32]
        public var labels: [String: String]
        public var weight: UInt32
        public var locality: String
        /// The workload's service account (`WorkloadEntry.serviceAccount`); empty when unset.
        public var serviceAccount: String = ""

        /// Whether the address is an IPv4 or IPv6 literal (EDS carries only those; hostnames are
        /// resolved by DNS clusters).
        public var hasIPAddress: Bool {
            if address.utf8.contains(UInt8(ascii: ":")) {
                return !address.hasPrefix("unix:") && address.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
            }
            let octets = address.split(separator: ".", omittingEmptySubsequences: false)
            return octets.count == 4 && octets.allSatisfy { octet in
                !octet.isEmpty && octet.count <= 3 && octet.allSatisfy(\.isASCII) && octet.allSatisfy(\.isNumber) && Int(octet)! <= 255
            }
        }

        /// The port to reach this endpoint on for a service port (WorkloadEntry port > targetPort > number).
        public func port(for servicePort: Port) -> UInt32 {
            if let port = ports[servicePort.name], port != 0 { return port }
            return servicePort.targetPort != 0 ? servicePort.targetPort : servicePort.number
        }
    }

    public var hostname: String
    public var namespace: String
    public var ports: [Port]
    public var resolution: Resolution
    public var meshExternal: Bool
    public var exportTo: [String]
    public var endpoints: [Endpoint]
    /// `subjectAltNames` of the ServiceEntry (used for TLS to external services without DR SANs).
    public var subjectAltNames: [String] = []
    /// The ServiceEntry that defined it.
    public var source: ConfigKey

    /// Visible to config in `namespace` (`exportTo` semantics; empty = public).
    public func isVisible(to namespace: String) -> Bool {
        MeshModel.exportTo(exportTo, from: self.namespace, includes: namespace)
    }

    public func port(number: UInt32) -> Port? { ports.first { $0.number == number } }
}

extension Dictionary where Key == String, Value == String {
    /// Every pair of `selector` is in `self` (an empty selector matches everything).
    public func matches(selector: [String: String]) -> Bool {
        selector.allSatisfy { self[$0.key] == $0.value }
    }
}
