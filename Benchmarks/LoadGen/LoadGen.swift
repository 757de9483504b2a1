import BenchmarkWorkload
import ArgumentParser
import Foundation
import MCP
import Snapshot

@main
struct LoadGen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftpilot-loadgen",
        abstract: "SwiftPilot load generator and benchmarks (see Benchmarks/README.md).",
        subcommands: [Scenarios.self, Micro.self, CeilingServe.self],
        defaultSubcommand: Scenarios.self)
}

/// The internal ceiling server (started by `run` as a child process).
struct CeilingServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ceiling-server", abstract: "Minimal pre-encoded ADS server (internal).")
    @Option var port: Int
    @Option var services: Int
    @Option var endpoints: Int = 4
    @Option(help: "sotw or delta (with VHDS).") var mode: CeilingServer.Mode = .sotw

    func run() async throws {
        let server = CeilingServer(workload: Workload(services: services, endpointsPerService: endpoints), mode: mode)
        try await server.serve(port: port)
    }
}

extension Fleet.Transport: ExpressibleByArgument {}
extension Fleet.Client: ExpressibleByArgument {}

struct Scenarios: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "End-to-end benchmarks against a swiftpilot process.",
        discussion: "Benchmarks: cold-sync, memory, idle, vs-change, endpoint-change, burst, churn, reconnect, ceiling, all.")

    @Argument(help: "Benchmarks to run, in order (all = every one).") var benchmarks: [String] = ["all"]
    @Option var proxies = 100
    @Option var services = 100
    @Option(help: "Endpoints per service.") var endpoints = 4
    @Option(help: "Path of the swiftpilot binary.") var swiftpilot = ".build/release/swiftpilot"
    @Option(help: "Directory for the JSON and Markdown results.") var out = "Benchmarks/results"
    @Option(help: "Result file name (default: derived from benchmarks and scale).") var name: String?
    @Option(help: "Repetitions of each single-change benchmark.") var repeats = 5
    @Option(help: "Edits in a burst.") var burst = 10
    @Option(help: "Endpoint changes per second during churn.") var churnRate = 10.0
    @Option(help: "Churn duration, seconds.") var churnSeconds = 10.0
    @Option(help: "Idle CPU window, seconds.") var idleSeconds = 10.0
    @Option(help: "swiftpilot --debounce-ms.") var debounceMs = 100
    @Option(help: "Longest wait for any convergence, seconds.") var timeout = 120.0
    @Option(help: "How the simulated proxies speak: sotw (state-of-the-world ADS) or delta (incremental ADS with VHDS). The ceiling speaks the same.")
    var transport: Fleet.Transport = .sotw
    @Option(help: "The simulated proxies' HTTP/2 client: nio (gRPC framed on SwiftNIO's HTTP/2, answered on the event loop) or grpc (grpc-swift's client). The ceiling runs against the same.")
    var client: Fleet.Client = .nio

    func run() async throws {
        let known = ["cold-sync", "memory", "idle", "vs-change", "endpoint-change", "burst", "churn", "reconnect", "ceiling"]
        if let unknown = benchmarks.first(where: { $0 != "all" && !known.contains($0) }) {
            throw ValidationError("unknown benchmark \(unknown); the benchmarks are \(known.joined(separator: ", ")) and all")
        }
        var selected = benchmarks.contains("all") ? known : benchmarks
        // Every benchmark but the ceiling measures the connected fleet: the cold sync connects it.
        if selected.contains(where: { $0 != "ceiling" && $0 != "cold-sync" }), !selected.contains("cold-sync") { selected.insert("cold-sync", at: 0) }
        var report = Report()
        report.parameters = ["proxies": "\(proxies)", "services": "\(services)", "endpoints": "\(endpoints)", "transport": (transport == .delta ? "delta ADS (VHDS)" : "SotW ADS") + ", one HTTP/2 connection per proxy",
                             "client": client == .nio ? "HTTP/2 on SwiftNIO, answered on the event loop" : "grpc-swift 2",
                             "debounce-ms": "\(debounceMs)", "repeats": "\(repeats)", "burst": "\(burst)",
                             "churn": "\(churnRate)/s for \(churnSeconds) s", "idle-window": "\(idleSeconds) s", "benchmarks": selected.joined(separator: ",")]
        let workload = Workload(services: services, endpointsPerService: endpoints)
        let runner = Runner(options: self, workload: workload)
        do {
            try await runner.run(selected, report: &report)
        } catch {
            report.notes.append("aborted: \(error)")
            print("aborted: \(error)")
        }
        runner.shutdown()
        report.notes += runner.fleetErrors
        let fileName = name ?? (benchmarks.joined(separator: "+") + "-\(proxies)p-\(services)s")
        try report.write(to: out, name: fileName)
    }
}

/// Runs the selected benchmarks against one swiftpilot process (and, for `ceiling`, one ceiling server).
final class Runner: @unchecked Sendable {
    let options: Scenarios
    let workload: Workload
    let source = MCPSource()
    let driver: ConfigDriver
    var swiftpilot: ChildProcess?
    var sourceTask: Task<Void, Error>?
    var xdsPort = 0
    var adminPort = 0
    var fleet: Fleet?
    var ceilingResults: [String: Double] = [:]
    var pilotResults: [String: Double] = [:]
    var fleetErrors: [String] = []
    var timeout: Duration { .seconds(options.timeout) }

    init(options: Scenarios, workload: Workload) {
        self.options = options
        self.workload = workload
        driver = ConfigDriver(workload: workload, source: source)
    }

    var pid: Int32 { swiftpilotPIDOverride ?? swiftpilot?.pid ?? 0 }
    var n: Int { options.proxies }

    func run(_ selected: [String], report: inout Report) async throws {
        let needsPilot = selected.contains { $0 != "ceiling" }
        if needsPilot { try await startSwiftPilot(report: &report) }
        for benchmark in selected {
            print("== \(benchmark)")
            switch benchmark {
            case "cold-sync": try await coldSync(&report)
            case "memory": try await memory(&report)
            case "idle": try await idle(&report)
            case "vs-change": try await singleChanges(&report, endpoint: false)
            case "endpoint-change": try await singleChanges(&report, endpoint: true)
            case "burst": try await burst(&report)
            case "churn": try await churn(&report)
            case "reconnect": try await reconnect(&report)
            case "ceiling":
                await fleet?.stop()
                swiftpilot?.stop()
                try await ceiling(&report)
            default: throw ValidationError("unknown benchmark \(benchmark)")
            }
            if let errors = fleet?.tracker.state.withLock({ $0.errors }), !errors.isEmpty { fleetErrors = Array(Set(fleetErrors + errors)).sorted() }
        }
    }

    func shutdown() {
        let fleet = self.fleet
        let semaphore = DispatchSemaphore(value: 0)
        Task { await fleet?.stop(); semaphore.signal() }
        semaphore.wait()
        swiftpilot?.stop()
        sourceTask?.cancel()
    }

    // MARK: - Setup

    func startSwiftPilot(report: inout Report) async throws {
        let (ports, portReady) = AsyncStream<Int>.makeStream()
        let source = self.source
        sourceTask = Task { try await source.serve(host: "127.0.0.1", port: 0) { portReady.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        guard let mcpPort = await iterator.next() else { throw ValidationError("MCP source did not start") }
        driver.publishAll()
        xdsPort = freePort()
        adminPort = freePort()
        let log = "/tmp/swiftpilot-bench-\(getpid()).log"
        let started = ContinuousClock.now
        swiftpilot = try ChildProcess(name: "swiftpilot", executable: options.swiftpilot, arguments: [
            "discovery", "--config-source", "xds://127.0.0.1:\(mcpPort)", "--xds-listen", "127.0.0.1:\(xdsPort)",
            "--admin-listen", "127.0.0.1:\(adminPort)", "--debounce-ms", "\(options.debounceMs)", "--log-level", "warning",
        ], log: log)
        print("swiftpilot pid \(pid), log \(log), xds \(xdsPort), admin \(adminPort), MCP source \(mcpPort)")
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let answer = await httpGet("http://127.0.0.1:\(adminPort)/healthz/ready"), answer.status == 200 { break }
            guard swiftpilot?.process.isRunning == true else { throw ValidationError("swiftpilot exited; see \(log)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        report.add(Row(benchmark: "setup", metric: "swiftpilot ready (MCP sync of \(workload.services * 3 + 1) resources)",
                       value: String(format: "%.2f s, RSS %.0f MB", seconds(ContinuousClock.now - started), Double(ProcStats.rssKB(pid: pid)) / 1024)))
    }

    // MARK: - Benchmarks

    func coldSync(_ report: inout Report) async throws {
        // One probe proxy first: the shared config is translated and encoded on first use.
        let probe = Fleet(proxies: 1, transport: options.transport, client: options.client)
        let cpu0 = ProcStats.cpuSeconds(pid: pid)
        probe.start(port: xdsPort)
        guard await probe.waitSynced(timeout: timeout) else { throw ValidationError("probe proxy did not sync: \(probe.tracker.state.withLock { $0.errors })") }
        let probeTime = probe.tracker.state.withLock { $0.synced[0]! }
        let probeBytes = probe.tracker.state.withLock { $0.bytes }
        report.add(Row(benchmark: "cold-sync", metric: "first proxy (translates + encodes the config)",
                       value: String(format: "%.0f ms, server CPU %.2f s, %@ per proxy", seconds(probeTime) * 1000, ProcStats.cpuSeconds(pid: pid) - cpu0, megabytes(probeBytes))))
        // Settled: longer than swiftpilot's heap trim interval (2 s after writes), as in `memory`.
        try await Task.sleep(for: .seconds(3))
        pilotResults["rssProbeKB"] = Double(ProcStats.rssKB(pid: pid))
        pilotResults["rssAnonProbeKB"] = Double(ProcStats.rssAnonKB(pid: pid))
        let fleet = Fleet(proxies: n, transport: options.transport, client: options.client)
        self.fleet = fleet
        let cpu1 = ProcStats.cpuSeconds(pid: pid)
        let started = ContinuousClock.now
        fleet.start(port: xdsPort)
        let ok = await fleet.waitSynced(timeout: timeout)
        let elapsed = ContinuousClock.now - started
        let cpu = ProcStats.cpuSeconds(pid: pid) - cpu1
        await probe.stop()
        let (times, bytes) = fleet.tracker.state.withLock { (Array($0.synced.values), $0.bytes) }
        pilotResults["coldSync"] = seconds(elapsed)
        report.add(Row(benchmark: "cold-sync", metric: "\(n) proxies, all of CDS+EDS+LDS+RDS\(options.transport == .delta ? "+VHDS" : "") ACKed",
                       value: String(format: "all in %.2f s (%@); %d/%d synced; server CPU %.2f s; %@ sent", seconds(elapsed), Latencies(times).text, times.count, n, cpu, megabytes(bytes)),
                       numbers: ["seconds": seconds(elapsed), "serverCPU": cpu, "bytes": Double(bytes), "synced": Double(times.count)]))
        if !ok { report.notes.append("cold sync: only \(times.count) of \(n) proxies synced within \(options.timeout) s") }
    }

    func memory(_ report: inout Report) async throws {
        try await Task.sleep(for: .seconds(3))
        let rss = Double(ProcStats.rssKB(pid: pid))
        let anonymous = Double(ProcStats.rssAnonKB(pid: pid))
        let probe = pilotResults["rssProbeKB"] ?? rss
        let anonymousProbe = pilotResults["rssAnonProbeKB"] ?? anonymous
        let perProxy = (rss - probe) / Double(n)
        let anonymousPerProxy = (anonymous - anonymousProbe) / Double(n)
        report.add(Row(benchmark: "memory", metric: "swiftpilot RSS: 1 proxy → \(n) proxies",
                       value: String(format: "%.0f MB → %.0f MB; %.1f KB per connected proxy (anonymous pages alone: %.1f KB)",
                                     probe / 1024, rss / 1024, perProxy, anonymousPerProxy),
                       target: "≤ 64 KB per proxy beyond the shared config", verdict: verdict(perProxy <= 64),
                       numbers: ["rssProbeKB": probe, "rssKB": rss, "perProxyKB": perProxy,
                                 "rssAnonProbeKB": anonymousProbe, "rssAnonKB": anonymous, "anonymousPerProxyKB": anonymousPerProxy]))
    }

    func idle(_ report: inout Report) async throws {
        try await Task.sleep(for: .seconds(1))
        let cpu0 = ProcStats.cpuSeconds(pid: pid)
        let started = ContinuousClock.now
        try await Task.sleep(for: .seconds(options.idleSeconds))
        let percent = (ProcStats.cpuSeconds(pid: pid) - cpu0) / seconds(ContinuousClock.now - started) * 100
        let connected = fleet?.tracker.state.withLock { $0.connected } ?? 0
        report.add(Row(benchmark: "idle", metric: "swiftpilot CPU with \(connected) connected proxies, \(Int(options.idleSeconds)) s",
                       value: String(format: "%.2f %% of one core", percent), target: "< 5 %", verdict: verdict(percent < 5),
                       numbers: ["cpuPercent": percent, "connected": Double(connected)]))
    }

    /// Publishes one change and waits until every proxy ACKed a response containing `marker`.
    func converge(marker: String, publish: () -> Void) async -> (latencies: [Duration], ok: Bool, cpu: Double, ownCPU: Double,
                                                                 responses: [String: Int], resources: [String: Int], bytes: Int) {
        guard let fleet else { return ([], false, 0, 0, [:], [:], 0) }
        let tracker = fleet.tracker
        tracker.resetCounters()
        tracker.watch(marker)
        let cpu0 = ProcStats.cpuSeconds(pid: pid)
        let own0 = ProcStats.cpuSeconds(pid: getpid())
        publish()
        let count = n
        let ok = await tracker.wait(timeout: timeout) { $0.watch?.acked.count == count }
        try? await Task.sleep(for: .milliseconds(200))  // late responses of the same push
        let cpu = ProcStats.cpuSeconds(pid: pid) - cpu0
        let own = ProcStats.cpuSeconds(pid: getpid()) - own0
        return tracker.state.withLock { state in
            (Array(state.watch?.acked.values ?? [:].values), ok, cpu, own, state.responsesByType, state.resourcesByType, state.bytes)
        }
    }

    func singleChanges(_ report: inout Report, endpoint: Bool) async throws {
        var all: [Duration] = []
        var cpu = 0.0
        var ownCPU = 0.0
        var bytes = 0
        var responses: [String: Int] = [:]
        var resources: [String: Int] = [:]
        var failures = 0
        for repeat_ in 0..<options.repeats {
            try await Task.sleep(for: .milliseconds(Int64(options.debounceMs) * 3 + 300))
            let index = (repeat_ * 7919) % workload.services
            let marker = endpoint ? driver.moveEndpoint(index, publish: false) : driver.editVirtualService(index, publish: false)
            let result = await converge(marker: marker) { endpoint ? driver.publishServiceEntries() : driver.publishVirtualServices() }
            if !result.ok { failures += 1 }
            all += result.latencies
            cpu += result.cpu
            ownCPU += result.ownCPU
            bytes += result.bytes
            responses.merge(result.responses, uniquingKeysWith: +)
            resources.merge(result.resources, uniquingKeysWith: +)
            print("  change \(repeat_): \(Latencies(result.latencies).text), \(result.responses.map { "\(TypeURL.short($0.key))×\($0.value)" }.sorted())")
        }
        let stats = Latencies(all)
        let reps = Double(options.repeats)
        let name = endpoint ? "endpoint-change" : "vs-change"
        let types = responses.map { "\(TypeURL.short($0.key)) \(Int((Double($0.value) / reps).rounded())) responses/\(Int((Double(resources[$0.key] ?? 0) / reps).rounded())) resources" }.sorted().joined(separator: ", ")
        let target = endpoint ? 200.0 : 500.0
        report.add(Row(benchmark: name, metric: "\(n) proxies, time until every proxy ACKed (\(options.repeats) changes pooled)",
                       value: stats.text + (failures > 0 ? " (\(failures) changes not converged in \(Int(options.timeout)) s)" : ""),
                       target: "p99 ≤ \(Int(target)) ms", verdict: verdict(stats.p99 <= target && failures == 0),
                       numbers: ["p50": stats.p50, "p99": stats.p99, "max": stats.max]))
        report.add(Row(benchmark: name, metric: "per change: pushed, bytes, server CPU (load generator CPU, same cores)",
                       value: String(format: "%@; %@; %.2f CPU-s (%.2f CPU-s)", types, megabytes(Int(Double(bytes) / reps)), cpu / reps, ownCPU / reps),
                       target: endpoint ? "EDS only" : "", verdict: endpoint ? verdict(responses.keys.allSatisfy { $0 == TypeURL.endpoint }) : "",
                       numbers: ["bytes": Double(bytes) / reps, "serverCPU": cpu / reps, "loadGeneratorCPU": ownCPU / reps]))
        pilotResults[endpoint ? "eds.max" : "rds.max"] = stats.max / 1000
        pilotResults[endpoint ? "eds.cpu" : "rds.cpu"] = cpu / reps
    }

    func burst(_ report: inout Report) async throws {
        try await Task.sleep(for: .milliseconds(Int64(options.debounceMs) * 3 + 300))
        // Publish K edits back to back; the proxies must converge on the last.
        let marker = "bench-burst-last-\(getpid())"
        let result = await converge(marker: marker) {
            for k in 0..<options.burst {
                _ = driver.editVirtualService((k * 31 + 1) % workload.services, marker: k == options.burst - 1 ? marker : nil)
            }
        }
        let stats = Latencies(result.latencies)
        let rds = (result.responses[TypeURL.route] ?? 0) + (result.responses[TypeURL.virtualHost] ?? 0)
        report.add(Row(benchmark: "burst", metric: "\(options.burst) VirtualService edits back to back, until every proxy ACKed the last",
                       value: String(format: "%@; %.1f %@ responses per proxy; %@; server CPU %.2f s", stats.text, Double(rds) / Double(n),
                                     options.transport == .delta ? "RDS+VHDS" : "RDS", megabytes(result.bytes), result.cpu),
                       numbers: ["p99": stats.p99, "max": stats.max, "rdsPerProxy": Double(rds) / Double(n)]))
    }

    func churn(_ report: inout Report) async throws {
        guard let fleet else { return }
        try await Task.sleep(for: .milliseconds(Int64(options.debounceMs) * 3 + 300))
        fleet.tracker.resetCounters()
        let cpu0 = ProcStats.cpuSeconds(pid: pid)
        let started = ContinuousClock.now
        let changes = Int(options.churnRate * options.churnSeconds)
        var marker = ""
        for k in 0..<changes {
            let due = started + .seconds(Double(k) / options.churnRate)
            try await Task.sleep(until: due, clock: .continuous)
            if k == changes - 1 { marker = driver.moveEndpoint((k * 7) % workload.services, publish: false); fleet.tracker.watch(marker); driver.publishServiceEntries() } else {
                _ = driver.moveEndpoint((k * 7) % workload.services)
            }
        }
        let count = n
        let ok = await fleet.tracker.wait(timeout: timeout) { $0.watch?.acked.count == count }
        let elapsed = seconds(ContinuousClock.now - started)
        let cpu = ProcStats.cpuSeconds(pid: pid) - cpu0
        let (responses, bytes, last) = fleet.tracker.state.withLock { ($0.responsesByType, $0.bytes, Array($0.watch?.acked.values ?? [:].values)) }
        let total = responses.values.reduce(0, +)
        report.add(Row(benchmark: "churn", metric: "endpoint churn \(options.churnRate)/s for \(options.churnSeconds) s",
                       value: String(format: "%d responses (%.1f per proxy per s: %@), %@ (%.1f MB/s), server CPU %.0f %% of one core; last change %@%@",
                                     total, Double(total) / Double(n) / elapsed, responses.map { "\(TypeURL.short($0.key)) \($0.value)" }.sorted().joined(separator: ", "),
                                     megabytes(bytes), Double(bytes) / 1_048_576 / elapsed, cpu / elapsed * 100, Latencies(last).text, ok ? "" : " (not converged)"),
                       numbers: ["responses": Double(total), "bytes": Double(bytes), "cpuPercent": cpu / elapsed * 100]))
    }

    func reconnect(_ report: inout Report) async throws {
        guard let fleet else { return }
        await fleet.stop()
        try await Task.sleep(for: .seconds(1))
        let cpu0 = ProcStats.cpuSeconds(pid: pid)
        let started = ContinuousClock.now
        fleet.start(port: xdsPort)
        let ok = await fleet.waitSynced(timeout: timeout)
        let elapsed = ContinuousClock.now - started
        let times = fleet.tracker.state.withLock { Array($0.synced.values) }
        report.add(Row(benchmark: "reconnect", metric: "all \(n) proxies reconnect at once (server warm)",
                       value: String(format: "all in %.2f s (%@); %d/%d synced; server CPU %.2f s", seconds(elapsed), Latencies(times).text, times.count, n, ProcStats.cpuSeconds(pid: pid) - cpu0),
                       numbers: ["seconds": seconds(elapsed)]))
        if !ok { report.notes.append("reconnect: only \(times.count) of \(n) synced") }
    }

    // MARK: - Ceiling

    func ceiling(_ report: inout Report) async throws {
        let port = freePort()
        let log = "/tmp/swiftpilot-ceiling-\(getpid()).log"
        let child = try ChildProcess(name: "ceiling", executable: "/proc/self/exe", arguments: [
            "ceiling-server", "--port", "\(port)", "--services", "\(workload.services)", "--endpoints", "\(workload.endpointsPerService)",
            "--mode", options.transport == .delta ? "delta" : "sotw",
        ], log: log, stdinPipe: true)
        defer { child.stop() }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: log, encoding: .utf8), text.contains("listening") { break }
            guard child.process.isRunning else { throw ValidationError("ceiling server exited; see \(log)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        let fleet = Fleet(proxies: n, transport: options.transport, client: options.client)
        self.fleet = fleet
        let cpu0 = ProcStats.cpuSeconds(pid: child.pid)
        let started = ContinuousClock.now
        fleet.start(port: port)
        _ = await fleet.waitSynced(timeout: timeout)
        let cold = seconds(ContinuousClock.now - started)
        let coldCPU = ProcStats.cpuSeconds(pid: child.pid) - cpu0
        let synced = fleet.tracker.state.withLock { $0.synced.count }
        report.add(Row(benchmark: "ceiling", metric: "cold sync of \(n) proxies from pre-encoded bytes",
                       value: String(format: "all in %.2f s (%d/%d); ceiling server CPU %.2f s", cold, synced, n, coldCPU)))
        if let pilot = pilotResults["coldSync"] {
            report.add(Row(benchmark: "ceiling", metric: "cold sync: SwiftPilot / ceiling", value: String(format: "%.2f× (%.2f s / %.2f s)", pilot / cold, pilot, cold),
                           target: "≤ 3×", verdict: verdict(pilot / cold <= 3), numbers: ["ratio": pilot / cold]))
        }
        for (change, marker, key) in [("rds", CeilingServer.vsMarker, "rds"), ("eds", CeilingServer.edsAddress, "eds")] {
            try await Task.sleep(for: .milliseconds(300))
            self.swiftpilotPIDOverride = child.pid
            let result = await converge(marker: marker) { child.send("push \(change)") }
            self.swiftpilotPIDOverride = nil
            let stats = Latencies(result.latencies)
            report.add(Row(benchmark: "ceiling", metric: "push of the changed \(options.transport == .delta && change == "rds" ? "VHDS" : change.uppercased()) response to \(n) proxies, until all ACKed",
                           value: String(format: "%@; %@; ceiling CPU %.2f s", stats.text, megabytes(result.bytes), result.cpu),
                           numbers: ["max": stats.max, "cpu": result.cpu]))
            if let pilot = pilotResults["\(key).max"], stats.max > 0 {
                let ratio = pilot / (stats.max / 1000)
                let cpuRatio = (pilotResults["\(key).cpu"] ?? 0) / max(result.cpu, 0.001)
                report.add(Row(benchmark: "ceiling", metric: "\(key == "rds" ? "VirtualService" : "endpoint") change: SwiftPilot / ceiling (time until all ACKed; server CPU)",
                               value: String(format: "%.2f× time, %.2f× CPU", ratio, cpuRatio),
                               target: key == "rds" ? "≤ 2×" : "", verdict: key == "rds" ? verdict(ratio <= 2) : "",
                               numbers: ["ratio": ratio, "cpuRatio": cpuRatio]))
            }
        }
        await fleet.stop()
    }

    var swiftpilotPIDOverride: Int32?
}
