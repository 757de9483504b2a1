import Foundation
import IstioAPI
import MCP
import Mesh
import Snapshot

/// A synthetic Istio mesh at a chosen scale, and the changes the benchmarks drive through it.
///
/// Service `i`: a ServiceEntry `svc-i.bench.svc.cluster.local` (STATIC, HTTP port 80, `E` endpoints,
/// half labelled `version: v1`, half `v2`), a DestinationRule with subsets `v1`/`v2`, a VirtualService
/// bound to the Gateway with a header route (`x-canary: true` → v2) and a weighted route (90/10).
/// One Gateway in `istio-system` selects `istio: ingressgateway` and binds every host on port 8080.
public struct Workload: Sendable {
    public static let namespace = "bench"
    public static let gatewayNamespace = "istio-system"
    public static let gatewayName = "bench-gateway"
    public static let routerLabels = ["istio": "ingressgateway"]

    public var services: Int
    public var endpointsPerService: Int

    public init(services: Int, endpointsPerService: Int) {
        self.services = services
        self.endpointsPerService = endpointsPerService
    }

    public static func host(_ index: Int) -> String { "svc-\(index).\(namespace).svc.cluster.local" }

    /// The initial address of an endpoint (10.0.0.0/8, unique per service and endpoint).
    public static func address(service: Int, endpoint: Int) -> String {
        let n = service * 16 + endpoint
        return "10.\(n / 65536 % 256).\(n / 256 % 256).\(n % 256)"
    }

    /// A moved endpoint's address (172.16.0.0/12, unique per change sequence number).
    public static func movedAddress(sequence: Int) -> String {
        "172.\(16 + sequence / 65536 % 16).\(sequence / 256 % 256).\(sequence % 256)"
    }

    /// `firstEndpoint` overrides the address of endpoint 0 (a moved endpoint).
    public func serviceEntry(_ index: Int, firstEndpoint: String? = nil) -> ConfigResource {
        var entry = ServiceEntry()
        entry.hosts = [Self.host(index)]
        entry.location = .meshInternal
        entry.resolution = .static
        var port = Istio_Networking_V1alpha3_ServicePort()
        port.number = 80
        port.name = "http"
        port.protocol = "HTTP"
        entry.ports = [port]
        entry.endpoints = (0..<endpointsPerService).map { e in
            var endpoint = WorkloadEntry()
            endpoint.address = e == 0 ? firstEndpoint ?? Self.address(service: index, endpoint: e) : Self.address(service: index, endpoint: e)
            endpoint.labels = ["version": e < endpointsPerService / 2 ? "v1" : "v2"]
            endpoint.ports = ["http": 8080]
            endpoint.locality = "region-1/zone-\(e % 2)"
            return endpoint
        }
        return ConfigResource(key: ConfigKey(kind: .serviceEntry, namespace: Self.namespace, name: "svc-\(index)"), spec: .serviceEntry(entry))
    }

    public func destinationRule(_ index: Int) -> ConfigResource {
        var rule = DestinationRule()
        rule.host = Self.host(index)
        rule.subsets = ["v1", "v2"].map { name in
            var subset = Istio_Networking_V1alpha3_Subset()
            subset.name = name
            subset.labels = ["version": name]
            return subset
        }
        return ConfigResource(key: ConfigKey(kind: .destinationRule, namespace: Self.namespace, name: "svc-\(index)"), spec: .destinationRule(rule))
    }

    /// `marker`, when set, becomes the canary header value: a change whose bytes the proxies can find.
    public func virtualService(_ index: Int, marker: String? = nil, canaryWeight: Int32 = 10) -> ConfigResource {
        let host = Self.host(index)
        func destination(_ subset: String, weight: Int32) -> Istio_Networking_V1alpha3_HTTPRouteDestination {
            var route = Istio_Networking_V1alpha3_HTTPRouteDestination()
            route.destination.host = host
            route.destination.subset = subset
            route.destination.port.number = 80
            route.weight = weight
            return route
        }
        var canary = Istio_Networking_V1alpha3_HTTPRoute()
        canary.name = "canary"
        var match = Istio_Networking_V1alpha3_HTTPMatchRequest()
        var value = Istio_Networking_V1alpha3_StringMatch()
        value.matchType = .exact(marker ?? "true")
        match.headers = ["x-canary": value]
        canary.match = [match]
        canary.route = [destination("v2", weight: 100)]
        var weighted = Istio_Networking_V1alpha3_HTTPRoute()
        weighted.name = "weighted"
        weighted.route = [destination("v1", weight: 100 - canaryWeight), destination("v2", weight: canaryWeight)]
        var service = VirtualService()
        service.hosts = [host]
        service.gateways = ["\(Self.gatewayNamespace)/\(Self.gatewayName)"]
        service.http = [canary, weighted]
        return ConfigResource(key: ConfigKey(kind: .virtualService, namespace: Self.namespace, name: "svc-\(index)"), spec: .virtualService(service))
    }

    public func gateway() -> ConfigResource {
        var gateway = Gateway()
        gateway.selector = Self.routerLabels
        var server = Istio_Networking_V1alpha3_Server()
        server.port.number = 8080
        server.port.name = "http"
        server.port.protocol = "HTTP"
        server.hosts = (0..<services).map { "\(Self.namespace)/\(Self.host($0))" }
        gateway.servers = [server]
        return ConfigResource(key: ConfigKey(kind: .gateway, namespace: Self.gatewayNamespace, name: Self.gatewayName), spec: .gateway(gateway))
    }

    /// The whole mesh.
    public func resources() -> [ConfigResource] {
        var all: [ConfigResource] = [gateway()]
        all.reserveCapacity(services * 3 + 1)
        for i in 0..<services {
            all.append(serviceEntry(i))
            all.append(destinationRule(i))
            all.append(virtualService(i))
        }
        return all
    }

    /// The workload as a store holds it: applied to the empty snapshot, so each collection has a
    /// revision and a later snapshot shares the revisions of the collections it did not change.
    public func snapshot() -> Snapshot {
        var byKind: [ConfigKind: [ConfigResource]] = [:]
        for resource in resources() { byKind[resource.key.kind, default: []].append(resource) }
        return Snapshot.empty.applying(SnapshotUpdate(byKind.mapValues { .replace($0) })).snapshot
    }

    /// `snapshot` after the two single changes the benchmarks time: the first endpoint of service 0
    /// moved, and VirtualService 0 edited.
    public func singleChanges(of snapshot: Snapshot) -> (movedEndpoint: Snapshot, editedRoute: Snapshot) {
        func changed(_ resource: ConfigResource) -> Snapshot {
            snapshot.applying(SnapshotUpdate([resource.key.kind: .patch(upsert: [resource], remove: [])])).snapshot
        }
        return (changed(serviceEntry(0, firstEndpoint: Self.movedAddress(sequence: 1))),
                changed(virtualService(0, marker: "single-edit")))
    }

    /// The router proxy the benchmarks simulate.
    public static func router(_ index: Int) -> Proxy {
        Proxy(kind: .router, ipAddress: "10.254.\(index / 256 % 256).\(index % 256)", id: "gw-\(index).\(gatewayNamespace)",
              dnsDomain: "\(gatewayNamespace).svc.cluster.local", namespace: gatewayNamespace, labels: routerLabels)
    }
}
