import Foundation
import IstioAPI
import MCP
import Snapshot
import SwiftProtobuf
import Testing

/// Paths of test inputs, relative to this file (test resources are deliberately not declared in Package.swift).
private enum Paths {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let fixture = testsDirectory.appendingPathComponent("Fixtures/every-message.yaml")
    static let protos = testsDirectory.appendingPathComponent("../../Protos/istio").standardizedFileURL
    static let networkingProtos = protos.appendingPathComponent("networking/v1alpha3")
    static let selectorProto = protos.appendingPathComponent("type/v1beta1/selector.proto")
}

/// Collects the proto full names of every message, at any depth, that has at least one field set.
///
/// proto3 `traverse` only visits fields that are set (non-default scalars, present sub-messages,
/// non-empty repeated fields and maps, the chosen oneof alternative), so a message "has a field set"
/// exactly when its traversal calls this visitor at least once.
private struct SetMessageCollector: SwiftProtobuf.Visitor {
    var names: Set<String> = []
    var sawField = false

    static func collect(_ message: any SwiftProtobuf.Message) throws -> Set<String> {
        var visitor = SetMessageCollector()
        try message.traverse(visitor: &visitor)
        var names = visitor.names
        if visitor.sawField { names.insert(type(of: message).protoMessageName) }
        return names
    }

    private mutating func descend<M: SwiftProtobuf.Message>(_ message: M) throws {
        sawField = true
        var child = SetMessageCollector()
        try message.traverse(visitor: &child)
        names.formUnion(child.names)
        if child.sawField { names.insert(M.protoMessageName) }
    }

    // Scalars (the narrower integer kinds and floats forward to these by default).
    mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws { sawField = true }
    mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws { sawField = true }
    mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws { sawField = true }
    mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws { sawField = true }
    mutating func visitSingularStringField(value: String, fieldNumber: Int) throws { sawField = true }
    mutating func visitSingularBytesField(value: Data, fieldNumber: Int) throws { sawField = true }
    mutating func visitSingularEnumField<E: SwiftProtobuf.Enum>(value: E, fieldNumber: Int) throws { sawField = true }

    // Messages (repeated message fields forward here one element at a time by default).
    mutating func visitSingularMessageField<M: SwiftProtobuf.Message>(value: M, fieldNumber: Int) throws {
        try descend(value)
    }

    // Maps.
    mutating func visitMapField<KeyType, ValueType: MapValueType>(
        fieldType: _ProtobufMap<KeyType, ValueType>.Type,
        value: _ProtobufMap<KeyType, ValueType>.BaseType,
        fieldNumber: Int
    ) throws { sawField = true }

    mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type,
        value: _ProtobufEnumMap<KeyType, ValueType>.BaseType,
        fieldNumber: Int
    ) throws where ValueType.RawValue == Int { sawField = true }

    mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type,
        value: _ProtobufMessageMap<KeyType, ValueType>.BaseType,
        fieldNumber: Int
    ) throws {
        sawField = true
        for item in value.values { try descend(item) }
    }

    mutating func visitUnknown(bytes: Data) throws {}
}

/// The full names of every message declared in a .proto file, nested ones included
/// (`package.Outer.Inner`). Synthetic map-entry types are never written as `message` in the
/// source, so they are not collected.
private func declaredMessageNames(inProto text: String) -> Set<String> {
    let withoutComments = text.split(separator: "\n", omittingEmptySubsequences: false)
        .map { line -> Substring in
            guard let range = line.range(of: "//") else { return line }
            return line[..<range.lowerBound]
        }
        .joined(separator: "\n")
    let tokens = withoutComments
        .replacingOccurrences(of: "{", with: " { ")
        .replacingOccurrences(of: "}", with: " } ")
        .replacingOccurrences(of: ";", with: " ; ")
        .split(whereSeparator: { $0.isWhitespace })
        .map(String.init)
    var package = ""
    var scopes: [String?] = []  // one entry per open brace: the message name, or nil for enum/oneof/…
    var names: Set<String> = []
    for (i, token) in tokens.enumerated() {
        switch token {
        case "package" where i + 1 < tokens.count:
            package = tokens[i + 1]
        case "{":
            if i >= 2, tokens[i - 2] == "message" {
                let name = tokens[i - 1]
                names.insert(([package] + scopes.compactMap { $0 } + [name]).joined(separator: "."))
                scopes.append(name)
            } else {
                scopes.append(nil)
            }
        case "}":
            _ = scopes.popLast()
        default:
            break
        }
    }
    return names
}

private func loadFixture() throws -> String {
    try String(contentsOf: Paths.fixture, encoding: .utf8)
}

private func decode(_ text: String, defaultNamespace: String = "default") -> IstioYAML.Result {
    IstioYAML.decode(text, file: "test.yaml", origin: "test", defaultNamespace: defaultNamespace)
}

@Suite("IstioYAML")
struct IstioYAMLTests {
    // MARK: The every-message fixture

    @Test func everyKindDecodes() throws {
        let result = IstioYAML.decode(try loadFixture(), file: "every-message.yaml")
        #expect(result.errors.isEmpty, "\(result.errors.map(\.description).joined(separator: "\n"))")
        let kinds = Set(result.resources.map(\.key.kind))
        for kind in ConfigKind.allCases {
            #expect(kinds.contains(kind), "no \(kind) decoded from the fixture")
        }
        for resource in result.resources {
            #expect(resource.spec.kind == resource.key.kind)
        }
        // Spot checks that camelCase YAML reached the right fields.
        let vs = try #require(result.resources.first { $0.key == ConfigKey(kind: .virtualService, namespace: "bookinfo", name: "reviews") })
        guard case .virtualService(let body) = vs.spec else { Issue.record("not a VirtualService body"); return }
        #expect(body.hosts == ["reviews.bookinfo.svc.cluster.local", "reviews.example.com"])
        #expect(body.http.first?.retries.perTryTimeout == Google_Protobuf_Duration(seconds: 2))
        #expect(body.http.first?.match.first?.headers["end-user"]?.exact == "jason")
        #expect(body.http.first?.fault.delay.percentage.value == 0.1)
        #expect(body.http.first(where: { $0.name == "teapot" })?.directResponse.body.bytes == Data("I'm a teapot".utf8))
        #expect(body.http.first(where: { $0.name == "derived-port-redirect" })?.redirect.derivePort == .fromRequestPort)
        #expect(vs.labels == ["app": "reviews", "tier": "2"])
        #expect(vs.annotations == ["owner": "team-reviews"])

        let dr = try #require(result.resources.first { $0.key.kind == .destinationRule })
        guard case .destinationRule(let rule) = dr.spec else { Issue.record("not a DestinationRule body"); return }
        #expect(rule.trafficPolicy.outlierDetection.consecutive5XxErrors.value == 5)
        #expect(rule.trafficPolicy.connectionPool.tcp.connectTimeout == Google_Protobuf_Duration(seconds: 0, nanos: 500_000_000))
        #expect(rule.trafficPolicy.loadBalancer.localityLbSetting.distribute.first?.to["us-west/zone1/*"] == 80)
    }

    @Test func everyMessageTypeIsExercised() throws {
        // EXPECTED: every message declared in the networking protos and the selector proto.
        var expected: Set<String> = []
        let protoFiles = try FileManager.default.contentsOfDirectory(atPath: Paths.networkingProtos.path)
            .filter { $0.hasSuffix(".proto") }
            .map { Paths.networkingProtos.appendingPathComponent($0) } + [Paths.selectorProto]
        #expect(protoFiles.count == 9, "expected the 8 networking protos plus selector.proto, found \(protoFiles.map(\.lastPathComponent))")
        for file in protoFiles {
            expected.formUnion(declaredMessageNames(inProto: try String(contentsOf: file, encoding: .utf8)))
        }
        // The parser must see nested declarations (sanity check on the parser itself).
        #expect(expected.contains("istio.networking.v1alpha3.LoadBalancerSettings.ConsistentHashLB.HTTPCookie.Attribute"))
        #expect(expected.contains("istio.networking.v1alpha3.EnvoyFilter.WaypointMatch.FilterMatch.SubFilterMatch"))
        #expect(expected.contains("istio.type.v1beta1.PolicyTargetReference"))
        #expect(expected.count > 90)
        // Nothing is excluded: every declared message is reachable from one of the eight kinds.

        // VISITED: every message with at least one field set in the decoded fixture.
        let result = IstioYAML.decode(try loadFixture(), file: "every-message.yaml")
        #expect(result.errors.isEmpty, "\(result.errors.map(\.description).joined(separator: "\n"))")
        var visited: Set<String> = []
        for resource in result.resources {
            visited.formUnion(try SetMessageCollector.collect(resource.spec.message))
        }

        let missing = expected.subtracting(visited).sorted()
        #expect(missing.isEmpty, "message types never populated by the fixture (\(missing.count)):\n\(missing.joined(separator: "\n"))")
        let exercised = expected.intersection(visited).count
        print("IstioYAML fixture: \(exercised) of \(expected.count) declared message types populated")
    }

    /// The traversal behind `everyMessageTypeIsExercised` must not count present-but-empty messages.
    @Test func collectorCountsOnlyPopulatedMessages() throws {
        var group = WorkloadGroup()
        group.probe.tcpSocket = Istio_Networking_V1alpha3_TCPHealthCheckConfig()  // present, no field set
        group.template.labels = ["app": "vm"]
        group.metadata.annotations = ["a": "b"]
        let names = try SetMessageCollector.collect(group)
        #expect(names == [
            "istio.networking.v1alpha3.WorkloadGroup",
            "istio.networking.v1alpha3.WorkloadGroup.ObjectMeta",
            "istio.networking.v1alpha3.WorkloadEntry",
            "istio.networking.v1alpha3.ReadinessProbe",
        ])
        #expect(try SetMessageCollector.collect(WorkloadGroup()).isEmpty)
    }

    // MARK: Errors

    @Test func unknownFieldNamesKindResourceAndField() {
        let text = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: good
              namespace: shop
            spec:
              hosts: [cart]
              http:
              - route:
                - destination:
                    host: cart
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: typo
              namespace: shop
            spec:
              hosts: [checkout]
              htpp:
              - route:
                - destination:
                    host: checkout
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: cart
              namespace: shop
            spec:
              host: cart
              trafficPolicy:
                tls:
                  mode: ISTIO_MUTUAL
            """
        let result = decode(text)
        #expect(result.errors.count == 1)
        let error = result.errors.first
        #expect(error?.resource == "VirtualService shop/typo")
        #expect(error?.description.contains("htpp") == true, "\(error?.description ?? "no error")")
        #expect(error?.field?.contains("htpp") == true)
        #expect(error?.location.contains("document 2") == true)
        #expect(result.resources.map(\.key) == [
            ConfigKey(kind: .virtualService, namespace: "shop", name: "good"),
            ConfigKey(kind: .destinationRule, namespace: "shop", name: "cart"),
        ])
    }

    @Test func misspelledNestedFieldIsNamed() {
        let text = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: nested-typo
              namespace: shop
            spec:
              hosts: [cart]
              http:
              - route:
                - destinaton:
                    host: cart
            """
        let result = decode(text)
        #expect(result.resources.isEmpty)
        #expect(result.errors.count == 1)
        #expect(result.errors.first?.resource == "VirtualService shop/nested-typo")
        #expect(result.errors.first?.description.contains("destinaton") == true, "\(result.errors.first?.description ?? "no error")")
    }

    @Test func unknownTopLevelKeyIsNamed() {
        let text = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: ok
            spec:
              hosts: [a.example.com]
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: stray
              namespace: edge
            labels:
              app: stray
            spec:
              hosts: [b.example.com]
            """
        let result = decode(text)
        #expect(result.errors.count == 1)
        let error = result.errors.first
        #expect(error?.field == "labels")
        #expect(error?.resource == "ServiceEntry edge/stray")
        #expect(error?.description.contains("'labels'") == true, "\(error?.description ?? "no error")")
        #expect(error?.location.contains("document 2") == true)
        #expect(result.resources.map(\.key) == [ConfigKey(kind: .serviceEntry, namespace: "default", name: "ok")])
    }

    @Test func missingMetadataNameIsNamed() {
        let text = """
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata:
              namespace: istio-system
            spec:
              selector: {istio: ingressgateway}
            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata:
              name: ingress
              namespace: istio-system
            spec:
              selector: {istio: ingressgateway}
            """
        let result = decode(text)
        #expect(result.errors.count == 1)
        let error = result.errors.first
        #expect(error?.field == "metadata.name")
        #expect(error?.resource?.contains("Gateway") == true)
        #expect(error?.description.contains("metadata.name") == true, "\(error?.description ?? "no error")")
        #expect(error?.location.contains("document 1") == true)
        #expect(result.resources.map(\.key) == [ConfigKey(kind: .gateway, namespace: "istio-system", name: "ingress")])
    }

    @Test func unsupportedKindIsNamed() {
        let text = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: deny-all
              namespace: shop
            spec: {}
            ---
            apiVersion: networking.istio.io/v1
            kind: Sidecar
            metadata:
              name: default
              namespace: shop
            spec:
              egress:
              - hosts: ["./*"]
            """
        let result = decode(text)
        #expect(result.errors.count == 1)
        let error = result.errors.first
        #expect(error?.field == "kind")
        #expect(error?.description.contains("AuthorizationPolicy") == true, "\(error?.description ?? "no error")")
        #expect(error?.description.contains("security.istio.io/v1") == true)
        #expect(error?.location.contains("document 1") == true)
        #expect(result.resources.map(\.key) == [ConfigKey(kind: .sidecar, namespace: "shop", name: "default")])
    }

    @Test func unsupportedNetworkingVersionIsRefused() {
        let text = """
            apiVersion: networking.istio.io/v2
            kind: VirtualService
            metadata: {name: future}
            spec: {hosts: [a]}
            """
        let result = decode(text)
        #expect(result.resources.isEmpty)
        #expect(result.errors.count == 1)
        #expect(result.errors.first?.field == "kind")
    }

    @Test func goDurationsAreAcceptedInDurationFieldsOnly() throws {
        let text = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: slow, namespace: shop}
            spec:
              hosts: [cart]
              http:
              - timeout: 5m
                retries: {attempts: 2, perTryTimeout: 1h30m, retryOn: 5m}
                match: [{headers: {x-window: {exact: 5m}}}]
                route:
                - destination: {host: cart}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: fine, namespace: shop}
            spec:
              hosts: [cart]
              http:
              - timeout: 250ms
                route:
                - destination: {host: cart}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: broken, namespace: shop}
            spec:
              hosts: [cart]
              http:
              - timeout: five minutes
                route:
                - destination: {host: cart}
            """
        let result = decode(text)
        #expect(result.resources.map(\.key.name) == ["slow", "fine"])
        #expect(result.errors.map(\.resource) == ["VirtualService shop/broken"])
        guard case .virtualService(let slow) = result.resources[0].spec, case .virtualService(let fine) = result.resources[1].spec else {
            Issue.record("not VirtualServices")
            return
        }
        #expect(slow.http[0].timeout.seconds == 300)
        #expect(slow.http[0].retries.perTryTimeout.seconds == 5400)
        #expect(slow.http[0].retries.retryOn == "5m", "a string field that looks like a duration is kept")
        #expect(slow.http[0].match[0].headers["x-window"]?.exact == "5m")
        #expect(fine.http[0].timeout.nanos == 250_000_000)
    }

    @Test func errorInThirdDocumentNamesDocumentAndLine() {
        let text = """
            # leading comment
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: vm-1}
            spec: {address: 10.0.0.1}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: vm-2}
            spec: {address: 10.0.0.2}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: vm-3}
            spec: {adress: 10.0.0.3}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: vm-4}
            spec: {address: 10.0.0.4}
            """
        let result = decode(text)
        #expect(result.errors.count == 1)
        let location = result.errors.first?.location ?? ""
        #expect(location.contains("document 3"), "\(location)")
        #expect(location.hasPrefix("test.yaml"), "\(location)")
        // The third document starts (its first key) on line 12.
        #expect(location.contains("line 12"), "\(location)")
        #expect(result.errors.first?.description.contains("adress") == true)
        #expect(result.resources.map(\.key.name) == ["vm-1", "vm-2", "vm-4"])
    }

    /// Regression: at b71c2e0 `Array(compose_all(yaml:))` iterated a Yams `YamlSequence`, which
    /// swallows parse errors, so a YAML syntax error produced no error at all and silently dropped
    /// the broken document and every document after it.
    @Test func yamlSyntaxErrorIsReportedAndLosesOnlyItsDocument() {
        let whole = decode("apiVersion: [unclosed\nkind: VirtualService\n")
        #expect(whole.resources.isEmpty)
        #expect(whole.errors.count == 1, "a YAML syntax error must be reported, got \(whole.errors.count) errors")
        #expect(whole.errors.first?.location.hasPrefix("test.yaml") == true)

        let midFile = decode("""
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: before}
            spec: {address: 10.0.0.1}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: broken
            spec: {address: 10.0.0.2}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: after}
            spec: {address: 10.0.0.3}
            """)
        #expect(midFile.errors.count == 1,
                "a syntax error in document 2 must be reported; got resources \(midFile.resources.map(\.key.name)) and errors \(midFile.errors.map(\.description))")
        let location = midFile.errors.first?.location ?? ""
        #expect(location.hasPrefix("test.yaml"), "\(location)")
        #expect(location.contains("document 2"), "\(location)")
        #expect(midFile.errors.first?.reason.contains("YAML") == true, "\(midFile.errors.first?.description ?? "no error")")
        #expect(midFile.resources.map(\.key.name) == ["before", "after"])
    }

    /// Regression: at b71c2e0 Yams resolved unquoted timestamp-like scalars to `Date` and `jsonValue`
    /// re-formatted them, so a string field written `2024-01-01` arrived as `2024-01-01T00:00:00Z`.
    /// Kubernetes (sigs.k8s.io/yaml, go-yaml v2) keeps such scalars as the text written.
    @Test func timestampLikeStringsAreKeptVerbatim() throws {
        let text = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: dated
              namespace: shop
              annotations:
                released: 2024-01-01
            spec:
              hosts: [cart]
              http:
              - match:
                - headers:
                    x-release:
                      exact: 2024-01-01
                route:
                - destination: {host: cart}
            """
        let result = decode(text)
        #expect(result.errors.isEmpty, "\(result.errors.map(\.description))")
        let resource = try #require(result.resources.first)
        #expect(resource.annotations["released"] == "2024-01-01")
        guard case .virtualService(let body) = resource.spec else { Issue.record("not a VirtualService body"); return }
        #expect(body.http.first?.match.first?.headers["x-release"]?.exact == "2024-01-01")
    }

    /// Regression: at b71c2e0 a YAML boolean bridged to `NSNumber` on Linux, so an unquoted boolean
    /// label value (`enabled: true`) was stored as the label "1". It must be either refused
    /// (Kubernetes requires string label values) or kept as "true" — never "1".
    @Test func unquotedBooleanLabelIsNotStoredAs1() {
        let text = """
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata:
              name: vm
              labels:
                enabled: true
            spec: {address: 10.0.0.9}
            """
        let result = decode(text)
        let refused = result.errors.first?.field == "metadata.labels.enabled"
        let value = result.resources.first?.labels["enabled"]
        #expect(refused || value == "true", "label stored as \(value.map { "\"\($0)\"" } ?? "nil"), errors \(result.errors.map(\.description))")
    }

    @Test func yamlAnchorsAndAliasesAreResolved() throws {
        let text = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: anchored
              labels: &labels {app: cart}
              annotations: *labels
            spec:
              hosts: &hosts [cart.example.com]
              gateways: *hosts
              http:
              - route:
                - destination: &dest {host: cart, subset: v1}
              - route:
                - destination: *dest
            """
        let result = decode(text)
        #expect(result.errors.isEmpty, "\(result.errors.map(\.description))")
        let resource = try #require(result.resources.first)
        #expect(resource.annotations == ["app": "cart"])
        guard case .virtualService(let body) = resource.spec else { Issue.record("not a VirtualService body"); return }
        #expect(body.gateways == ["cart.example.com"])
        #expect(body.http.map(\.route.first?.destination.subset) == ["v1", "v1"])
    }

    /// BUG (Sources/MCP/IstioYAML.swift, `documents(of:)`): the text is split on `---` lines before
    /// parsing, so a YAML directive (`%YAML 1.2`), which must precede `---`, ends up alone in a
    /// "document" of its own and is reported as invalid YAML, although the stream is valid
    /// (the resource itself still decodes). A valid stream must produce no errors.
    @Test func yamlDirectiveIsNotAnError_BUG_directiveSplitIntoItsOwnDocument() {
        let text = """
            %YAML 1.2
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: vm}
            spec: {address: 10.0.0.9}
            """
        let result = decode(text)
        #expect(result.errors.isEmpty, "\(result.errors.map(\.description))")
        #expect(result.resources.map(\.key.name) == ["vm"])
    }

    // MARK: Versions, namespaces, metadata

    @Test(arguments: ["networking.istio.io/v1alpha3", "networking.istio.io/v1beta1", "networking.istio.io/v1"])
    func apiVersionAliasesDecodeToTheSameKind(apiVersion: String) throws {
        let text = """
            apiVersion: \(apiVersion)
            kind: DestinationRule
            metadata:
              name: ratings
              namespace: bookinfo
            spec:
              host: ratings
              subsets:
              - name: v1
                labels: {version: v1}
            """
        let result = decode(text)
        #expect(result.errors.isEmpty, "\(result.errors.map(\.description))")
        let resource = try #require(result.resources.first)
        #expect(result.resources.count == 1)
        #expect(resource.key == ConfigKey(kind: .destinationRule, namespace: "bookinfo", name: "ratings"))
        var expected = DestinationRule()
        expected.host = "ratings"
        var subset = Istio_Networking_V1alpha3_Subset()
        subset.name = "v1"
        subset.labels = ["version": "v1"]
        expected.subsets = [subset]
        #expect(resource.spec == .destinationRule(expected))
    }

    @Test func aliasesYieldIdenticalResources() {
        let bodies = ["v1alpha3", "v1beta1", "v1"].map { version in
            decode("""
                apiVersion: networking.istio.io/\(version)
                kind: Gateway
                metadata: {name: gw, namespace: istio-system}
                spec:
                  selector: {istio: ingressgateway}
                  servers:
                  - port: {number: 80, name: http, protocol: HTTP}
                    hosts: ["*"]
                """).resources
        }
        #expect(bodies.allSatisfy { $0.count == 1 })
        #expect(bodies[0] == bodies[1])
        #expect(bodies[1] == bodies[2])
        #expect(bodies[0].first?.key.kind == .gateway)
    }

    @Test func namespaceDefaultsAndMetadataIsCarried() throws {
        let text = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: no-namespace
              labels:
                app: payments
                team: core
              annotations:
                networking.istio.io/exportTo: "."
                description: "external payments API"
              resourceVersion: "42"
              creationTimestamp: "2024-05-01T12:00:00Z"
            spec:
              hosts: [payments.example.com]
              resolution: DNS
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: empty-namespace
              namespace: ""
            spec:
              hosts: [ledger.example.com]
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: explicit
              namespace: finance
            spec:
              hosts: [bank.example.com]
            """
        let result = decode(text)
        #expect(result.errors.isEmpty, "\(result.errors.map(\.description))")
        #expect(result.resources.map(\.key) == [
            ConfigKey(kind: .serviceEntry, namespace: "default", name: "no-namespace"),
            ConfigKey(kind: .serviceEntry, namespace: "default", name: "empty-namespace"),
            ConfigKey(kind: .serviceEntry, namespace: "finance", name: "explicit"),
        ])
        let first = try #require(result.resources.first)
        #expect(first.labels == ["app": "payments", "team": "core"])
        #expect(first.annotations == ["networking.istio.io/exportTo": ".", "description": "external payments API"])
        #expect(first.version == "42")
        #expect(first.createTime == Date(timeIntervalSince1970: 1_714_564_800))
        #expect(first.origin == "test")
        #expect(result.resources[2].labels.isEmpty)
        #expect(result.resources[2].annotations.isEmpty)

        // A caller-supplied default namespace replaces "default".
        let scoped = decode(text, defaultNamespace: "tenant-a")
        #expect(scoped.resources.map(\.key.namespace) == ["tenant-a", "tenant-a", "finance"])
    }

    @Test func unquotedTimestampIsCarried() throws {
        let text = """
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata:
              name: vm
              creationTimestamp: 2024-05-01T12:00:00Z
            spec: {address: 10.0.0.9}
            """
        let result = decode(text)
        #expect(result.errors.isEmpty, "\(result.errors.map(\.description))")
        #expect(result.resources.first?.createTime == Date(timeIntervalSince1970: 1_714_564_800))
    }

    @Test func nonStringLabelIsRefused() {
        let text = """
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata:
              name: vm
              labels:
                nested: {a: b}
            spec: {address: 10.0.0.9}
            """
        let result = decode(text)
        #expect(result.resources.isEmpty)
        #expect(result.errors.first?.field == "metadata.labels.nested")
        #expect(result.errors.first?.resource == "WorkloadEntry default/vm")
    }

    @Test func emptyDocumentsAreSkipped() {
        let text = """
            ---
            # only a comment
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: vm}
            spec: {address: 10.0.0.9}
            ---
            """
        let result = decode(text)
        #expect(result.errors.isEmpty, "\(result.errors.map(\.description))")
        #expect(result.resources.map(\.key.name) == ["vm"])
    }

    @Test func documentThatIsNotAMappingIsRefused() {
        let result = decode("""
            - just
            - a list
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: vm}
            spec: {address: 10.0.0.9}
            """)
        #expect(result.errors.count == 1)
        #expect(result.errors.first?.location.contains("document 1") == true)
        #expect(result.resources.map(\.key.name) == ["vm"])
    }
}
