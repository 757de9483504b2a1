import EnvoyAPI
import Foundation
import Mesh
import Snapshot
import SwiftProtobuf
import Synchronization
import Translation

/// One Envoy resource, serialized once and shared by every proxy that receives it.
///
/// A class: the per-type lists, maps and sorted blocks of every generation hold thousands of
/// these, and a generation brought forward copies those collections; copying a reference is one
/// count where copying the fields was well over a hundred bytes and several counts each.
public final class EncodedResource: Sendable, Equatable {
    public let name: String
    /// The resource packed in an `Any` (deterministic bytes, typed URL).
    public let any: Google_Protobuf_Any
    /// Content hash of the bytes; also the per-resource version in delta xDS.
    public let hash: UInt64

    /// ``hash`` as a string, computed once.
    public let version: String
    /// The hash of name and content together: a set of resources' version sums these, so one
    /// resource replaced updates it without going over the others.
    let entryHash: UInt64
    /// The resource as a delta response carries it (name, version, resource), built once and
    /// shared by every delta stream that sends it.
    public let deltaResource: Envoy_Service_Discovery_V3_Resource

    public convenience init(name: String, message: any SwiftProtobuf.Message) {
        self.init(name: name, any: Packing.any(message))
    }

    /// A resource already packed (its bytes deterministic).
    public convenience init(name: String, any: Google_Protobuf_Any) {
        var hasher = FNV1a()
        hasher.combine(any.value)
        self.init(name: name, any: any, hash: hasher.value)
    }

    /// A resource already packed whose content hash is known: a function of exactly what decides
    /// its bytes (a whole route configuration hashes its parts' hashes, not its megabyte).
    init(name: String, any: Google_Protobuf_Any, hash: UInt64) {
        self.name = name
        self.any = any
        self.hash = hash
        var named = FNV1a()
        named.combine(name)
        // Mixed (SplitMix64's finalizer) so that sums of entries do not cancel out.
        var mixed = named.value ^ (hash &* 0x9E37_79B9_7F4A_7C15)
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        entryHash = mixed ^ (mixed >> 31)
        version = String(hash, radix: 16)
        var wrapped = Envoy_Service_Discovery_V3_Resource()
        wrapped.name = name
        wrapped.version = version
        wrapped.resource = any
        deltaResource = wrapped
    }

    /// Same name and content (the rest follows from these).
    public static func == (a: EncodedResource, b: EncodedResource) -> Bool {
        a === b || (a.name == b.name && a.hash == b.hash && a.any == b.any)
    }
}

/// The encoded resources of one proxy class, per type and name.
public struct EncodedConfig: Sendable {
    private var byType: [XDSType: [String: EncodedResource]] = [:]
    public var resources: [XDSType: [String: EncodedResource]] {
        get { byType }
        set {
            byType = newValue
            for type in XDSType.allCases { summarize(type) }
            id = Self.nextID()
            ancestry = []
        }
    }

    /// Identifies this content (a copy keeps it; any change makes a new one).
    public private(set) var id: UInt64 = EncodedConfig.nextID()
    /// The configs this one was derived from by ``applying(_:)``, parent first, at most
    /// ``ancestryLimit`` of them, each with the names per type whose content changed or that were
    /// added since it: what a proxy holding that ancestor lacks. A stream busy through several
    /// generations pushes once, from the newest, and still compares only what changed.
    private var ancestry: [Derivation] = []
    private struct Derivation: Sendable {
        var ancestor: UInt64
        var changed: [XDSType: [String]]
    }
    static let ancestryLimit = 8
    private static let counter = Atomic<UInt64>(0)
    private static func nextID() -> UInt64 { counter.add(1, ordering: .relaxed).newValue }

    /// Resources of `type` that differ from `other` (changed or added), when known without comparing
    /// every resource: nil unless `other` is this config or one of its last ``ancestryLimit`` ancestors.
    public func changedNames(_ type: XDSType, since other: EncodedConfig) -> [String]? {
        if other.id == id { return [] }
        guard let derivation = ancestry.first(where: { $0.ancestor == other.id }) else { return nil }
        return derivation.changed[type] ?? []
    }

    /// The ancestry of a config derived from this one with `changed`: this config, then this
    /// config's ancestors with `changed` added to what changed since each.
    private func ancestry(deriving changed: [XDSType: [String]]) -> [Derivation] {
        var result = [Derivation(ancestor: id, changed: changed)]
        for older in ancestry.prefix(Self.ancestryLimit - 1) {
            var merged = older.changed
            for (type, names) in changed where !names.isEmpty {
                let known = merged[type] ?? []
                let knownSet = Set(known)
                merged[type] = known + names.filter { !knownSet.contains($0) }
            }
            result.append(Derivation(ancestor: older.ancestor, changed: merged))
        }
        return result
    }
    /// Per type, computed once per proxy class: every resource sorted by name, and its version.
    /// Streams whose subscription covers the whole type reuse these instead of sorting and
    /// hashing per proxy.
    /// Kept in ``blocks``, which also encode the list once for every stream of the class that is
    /// sent the whole type.
    public func sorted(_ type: XDSType) -> [EncodedResource] { blocks[type]?.resources ?? [] }
    public private(set) var blocks: [XDSType: EncodedBlock] = [:]
    /// Per type, the version of every resource together (``version(of:)``), and the sum it is made of.
    public private(set) var fullVersion: [XDSType: String] = [:]
    private var versionSums: [XDSType: UInt64] = [:]
    /// Per type, the names of every resource: a proxy subscribing to exactly these shares this
    /// set's storage instead of holding its own copy of thousands of names.
    public private(set) var names: [XDSType: Set<String>] = [:]
    /// Per type, each name's position in ``sorted``: lets a stream check that a request names
    /// exactly the type's resources with one lookup per name (``namesExactly(_:of:)``).
    private var ordinals: [XDSType: [String: Int]] = [:]
    /// Per type, name → version of every resource: a delta stream whose client holds exactly this
    /// shares the map's storage instead of keeping its own.
    public private(set) var versions: [XDSType: [String: String]] = [:]
    /// The route configurations as served with VHDS: no inline virtual hosts, `vhds` over ADS.
    /// Their virtual hosts are the `.virtualHost` resources. Only delta ADS streams to Envoy use
    /// these; every other stream gets `resources[.route]`.
    public private(set) var discoveredRoutes: [String: EncodedResource] = [:]
    /// The virtual hosts as built, with their bytes, for the next ``applying(_:)`` to reuse.
    private var virtualHostCache: [String: EncodedVirtualHost] = [:]

    /// Proxyless gRPC: the workload's inbound mutual TLS, from which the listeners xDS-enabled
    /// servers request by name are built when asked for (see ``resource(_:named:)``).
    public private(set) var inboundMutualTLS: InboundMutualTLS?

    public init(_ config: ProxyConfig) {
        inboundMutualTLS = config.inboundMutualTLS
        let routes = Self.encodeRoutes(config.routes)
        discoveredRoutes = Self.index(routes.discovered)
        virtualHostCache = routes.cache
        resources = [
            .cluster: Self.index(config.clusters.map { EncodedResource(name: $0.name, message: $0) }),
            .endpoint: Self.index(config.endpoints.map { EncodedResource(name: $0.clusterName, message: $0) }),
            .listener: Self.index(config.listeners.map { EncodedResource(name: $0.name, message: $0) }),
            .route: Self.index(routes.whole),
            .virtualHost: Self.index(routes.hosts),
        ]
    }

    public init() {}

    /// This config with a translation update applied: changed assignments replaced, listeners and
    /// routes replaced when the update rebuilt them. Untouched types keep their sorted lists and versions.
    public func applying(_ update: Translator.Update) -> EncodedConfig {
        var next = self
        var changed: [XDSType: [String]] = [:]
        func replace(_ type: XDSType, with resources: [EncodedResource], all: Bool, removing gone: [String] = []) {
            var byName = all ? [:] : next.byType[type] ?? [:]
            for resource in resources { byName[resource.name] = resource }
            for name in gone { byName.removeValue(forKey: name) }
            let before = byType[type] ?? [:]
            let changedResources = resources.filter { before[$0.name]?.hash != $0.hash }
            changed[type] = changedResources.map(\.name)
            next.byType[type] = byName
            // The same names as before (a VirtualService edit re-sends every virtual host, one of
            // them changed): the summaries are updated in place, not rebuilt.
            let sameNames = gone.isEmpty && byName.count == before.count && changedResources.allSatisfy { before[$0.name] != nil }
            if sameNames { next.summarize(type, replacing: changedResources) } else { next.summarize(type) }
        }
        if !update.endpoints.isEmpty {
            replace(.endpoint, with: update.endpoints.map { EncodedResource(name: $0.clusterName, message: $0) }, all: false)
        }
        if let listeners = update.listeners {
            replace(.listener, with: listeners.map { EncodedResource(name: $0.name, message: $0) }, all: true)
        }
        if let routes = update.routes {
            let encoded = Self.encodeRoutes(routes, previous: virtualHostCache)
            replace(.route, with: encoded.whole, all: true)
            next.discoveredRoutes = Self.index(encoded.discovered)
            next.virtualHostCache = encoded.cache
            // Only the virtual hosts encoded anew and those gone: the others are the same resources.
            replace(.virtualHost, with: encoded.freshHosts, all: false, removing: encoded.goneHosts)
        }
        next.id = Self.nextID()
        next.ancestry = ancestry(deriving: changed)
        return next
    }

    /// ``summarize(_:)`` after replacing resources: when each one replaces an existing name, the
    /// sorted list is updated in place and the name set kept; an added name falls back to the
    /// full summary.
    private mutating func summarize(_ type: XDSType, replacing changed: [EncodedResource]) {
        guard !changed.isEmpty else { return }
        guard let block = blocks[type], var sum = versionSums[type], var versionMap = versions.removeValue(forKey: type) else {
            return summarize(type)
        }
        var list = block.resources
        var bodyBytes = block.bodyBytes
        for resource in changed {
            // Binary search by name in the sorted list.
            var low = 0, high = list.count
            while low < high {
                let mid = (low + high) / 2
                if list[mid].name < resource.name { low = mid + 1 } else { high = mid }
            }
            guard low < list.count, list[low].name == resource.name else { return summarize(type) }
            sum = sum &- list[low].entryHash &+ resource.entryHash
            bodyBytes += resource.any.value.count - list[low].any.value.count
            list[low] = resource
            versionMap[resource.name] = resource.version
        }
        versionSums[type] = sum
        fullVersion[type] = String(sum, radix: 16)
        blocks[type] = EncodedBlock(list, bodyBytes: bodyBytes)
        versions[type] = versionMap
    }

    private mutating func summarize(_ type: XDSType) {
        let list = (byType[type] ?? [:]).values.sorted { $0.name < $1.name }
        blocks[type] = EncodedBlock(list)
        let sum = Self.versionSum(list)
        versionSums[type] = sum
        fullVersion[type] = String(sum, radix: 16)
        names[type] = Set(list.map(\.name))
        ordinals[type] = Dictionary(list.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        versions[type] = Dictionary(list.map { ($0.name, $0.version) }, uniquingKeysWith: { first, _ in first })
    }

    /// Route configurations encoded both ways, each virtual host serialized once: whole (what
    /// state-of-the-world and non-VHDS streams get), and in their VHDS form (the configurations
    /// without virtual hosts, and the virtual hosts as resources of their own). A virtual host equal
    /// to one in `previous` (by VHDS name) keeps its bytes: a VirtualService edit serializes the
    /// hosts it changed, not the whole configuration.
    static func encodeRoutes(_ routes: [RouteConfiguration], previous: [String: EncodedVirtualHost] = [:]) -> EncodedRoutes {
        var result = EncodedRoutes(cache: previous)
        // Virtual hosts of `previous` found again (kept or replaced): when all are, none is gone.
        var foundAgain = 0
        for configuration in routes {
            let shell = EncodedResource(name: configuration.name, message: RouteBuilder.discoveredRouteConfiguration(configuration))
            result.discovered.append(shell)
            var inline: [Data] = []
            inline.reserveCapacity(configuration.virtualHosts.count)
            // The whole configuration's bytes follow from its shell's and its virtual hosts'.
            var parts: [UInt64] = [shell.hash]
            parts.reserveCapacity(configuration.virtualHosts.count + 1)
            for original in configuration.virtualHosts {
                let name = Names.discoveredVirtualHost(routeConfiguration: configuration.name, virtualHost: original.name)
                let encoded: EncodedVirtualHost
                let known = previous[name]
                if known != nil { foundAgain += 1 }
                // A virtual host kept by translation shares its storage with the one before: equal at once.
                if let known, known.original == original {
                    encoded = known
                } else {
                    let resource = EncodedResource(name: name, message: RouteBuilder.discoveredVirtualHost(original, of: configuration))
                    encoded = EncodedVirtualHost(original: original, resource: resource,
                                                 inline: WireFormat.replacingLeadingString(in: resource.any.value, with: original.name))
                    result.cache[name] = encoded
                    result.freshHosts.append(resource)
                }
                result.hosts.append(encoded.resource)
                inline.append(encoded.inline)
                parts.append(encoded.resource.hash)
            }
            var any = Google_Protobuf_Any()
            any.typeURL = Packing.typeURL(of: configuration)
            any.value = WireFormat.routeConfiguration(configuration, virtualHosts: inline)
            var hasher = FNV1a()
            parts.withUnsafeBytes { hasher.combine($0) }
            result.whole.append(EncodedResource(name: configuration.name, any: any, hash: hasher.value))
        }
        if foundAgain < previous.count {
            let present = Set(result.hosts.map(\.name))
            result.goneHosts = previous.keys.filter { !present.contains($0) }
            for name in result.goneHosts { result.cache.removeValue(forKey: name) }
        }
        return result
    }

    /// ``encodeRoutes(_:previous:)``'s result.
    struct EncodedRoutes {
        /// The route configurations with their virtual hosts inline.
        var whole: [EncodedResource] = []
        /// The route configurations as VHDS serves them, and their virtual hosts, in order.
        var discovered: [EncodedResource] = []
        var hosts: [EncodedResource] = []
        /// The virtual hosts encoded anew (not in `previous` as they are), and the names of those
        /// of `previous` that are gone.
        var freshHosts: [EncodedResource] = []
        var goneHosts: [String] = []
        /// Every virtual host by VHDS name, for the next encoding to reuse.
        var cache: [String: EncodedVirtualHost]
    }

    /// A VHDS virtual host with its encoding, kept to reuse the bytes while it does not change.
    struct EncodedVirtualHost: Sendable {
        /// The virtual host as the route configuration holds it (under its own name).
        var original: Envoy_Config_Route_V3_VirtualHost
        var resource: EncodedResource
        /// The bytes as the whole route configuration inlines it (under its own name; the VHDS
        /// resource's name is `<route configuration>/<name>`, so one name implies the other).
        var inline: Data
    }

    static func index(_ list: [EncodedResource]) -> [String: EncodedResource] {
        Dictionary(list.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public subscript(type: XDSType) -> [String: EncodedResource] { resources[type] ?? [:] }

    /// The resource of a name: one of the class's, or a listener built for the name (a
    /// proxyless gRPC server's inbound listener); nil when there is none.
    public func resource(_ type: XDSType, named name: String) -> EncodedResource? {
        if let resource = byType[type]?[name] { return resource }
        guard type == .listener, let inboundMutualTLS,
              let listener = GRPCBuilder.inboundListener(named: name, mutualTLS: inboundMutualTLS) else { return nil }
        return EncodedResource(name: name, message: listener)
    }

    /// Names of clusters whose endpoints come over EDS.
    public var edsClusterNames: Set<String> { names[.endpoint] ?? [] }

    /// Whether `requested` names exactly the resources of `type` (``names``), in any order: the same
    /// count, each name one of the type's, none twice. Decided without building a set: every SotW
    /// EDS ACK names all of a proxy's clusters, thousands of names, most of them unchanged.
    public func namesExactly(_ requested: [String], of type: XDSType) -> Bool {
        guard let ordinals = ordinals[type], !ordinals.isEmpty, requested.count == ordinals.count else { return false }
        var seen = [Bool](repeating: false, count: ordinals.count)
        for name in requested {
            guard let ordinal = ordinals[name], !seen[ordinal] else { return false }
            seen[ordinal] = true
        }
        return true
    }

    /// The resources of `resources` that `before` lacks or holds with other content; both sorted by
    /// name (``sorted(_:)``). One walk of the two lists: unchanged resources are mostly the very
    /// objects of the older config, so most steps compare two pointers, not names.
    static func changed(_ resources: [EncodedResource], since before: [EncodedResource]) -> [EncodedResource] {
        var result: [EncodedResource] = []
        var index = 0
        for resource in resources {
            if index < before.count, before[index] === resource {
                index += 1
                continue
            }
            while index < before.count, before[index].name < resource.name { index += 1 }
            if index < before.count, before[index].name == resource.name {
                if before[index].hash != resource.hash { result.append(resource) }
                index += 1
            } else {
                result.append(resource)
            }
        }
        return result
    }

    /// A version string for a set of resources: stable for the same content, in any order.
    public static func version(of resources: [EncodedResource]) -> String {
        String(versionSum(resources), radix: 16)
    }

    /// The sum of the resources' name-and-content hashes: what ``version(of:)`` writes out.
    static func versionSum(_ resources: [EncodedResource]) -> UInt64 {
        resources.reduce(0) { $0 &+ $1.entryHash }
    }
}

/// Resources in order as the `resources` field of a response (each one framed as field 2; state
/// of the world packs them, delta wraps them), encoded on first use and then only copied:
/// thousands of proxies of a class subscribe to every cluster, endpoint assignment and listener
/// (delta: and virtual host), and encoding them per proxy cost more than the rest of a cold sync.
public final class EncodedBlock: Sendable {
    public let resources: [EncodedResource]
    /// The bodies' total size (what the sync status reports as bytes sent).
    public let bodyBytes: Int
    private let stateOfTheWorld = Mutex<[UInt8]?>(nil)
    private let delta = Mutex<[UInt8]?>(nil)

    /// - Parameter bodyBytes: the bodies' total when known (a block updated in place adjusts its
    ///   predecessor's by the resources replaced, instead of visiting every resource).
    init(_ resources: [EncodedResource], bodyBytes: Int? = nil) {
        self.resources = resources
        self.bodyBytes = bodyBytes ?? resources.reduce(0) { $0 + $1.any.value.count }
    }

    /// The encoded run for a state-of-the-world or a delta response.
    func wire(stateOfTheWorld sotw: Bool) throws -> [UInt8] {
        if sotw {
            return try stateOfTheWorld.withLock { try Self.cached(&$0) { try ResponseEncoding.entries(resources.map(\.any)) } }
        }
        return try delta.withLock { try Self.cached(&$0) { try ResponseEncoding.entries(resources.map(\.deltaResource)) } }
    }

    private static func cached(_ slot: inout [UInt8]?, _ encode: () throws -> [UInt8]) rethrows -> [UInt8] {
        if let slot { return slot }
        let bytes = try encode()
        slot = bytes
        return bytes
    }
}
