import Foundation

/// Latency summary in milliseconds.
struct Latencies: Codable {
    var count: Int
    var p50: Double
    var p99: Double
    var max: Double

    init(_ durations: [Duration]) {
        let ms = durations.map { Double($0.components.seconds) * 1000 + Double($0.components.attoseconds) / 1e15 }.sorted()
        count = ms.count
        func at(_ q: Double) -> Double { ms.isEmpty ? .nan : ms[min(ms.count - 1, Int((Double(ms.count) * q).rounded(.up)) - 1)] }
        p50 = at(0.5)
        p99 = at(0.99)
        max = ms.last ?? .nan
    }

    var text: String { count == 0 ? "—" : String(format: "p50 %.0f / p99 %.0f / max %.0f ms", p50, p99, max) }
}

/// One reported number, with the target it is held against.
struct Row: Codable {
    var benchmark: String
    var metric: String
    var value: String
    var target: String = ""
    var verdict: String = ""
    var numbers: [String: Double] = [:]
}

/// The results of one run: machine, commit, parameters, rows. Written as JSON and Markdown.
struct Report: Codable {
    var date = ISO8601DateFormatter().string(from: Date())
    var commit = ProcessInfo.processInfo.environment["BENCH_COMMIT"] ?? "unknown"
    var machine = Report.machine()
    var parameters: [String: String] = [:]
    var rows: [Row] = []
    var notes: [String] = []

    static func machine() -> String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "?"
        let memKB = ProcStats.status(pid: getpid(), "VmRSS") >= 0 ? meminfoTotalKB() : 0
        let load = ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
        return "\(ProcessInfo.processInfo.activeProcessorCount) cores (\(model)), \(memKB / 1_048_576) GB RAM, \(ProcessInfo.processInfo.operatingSystemVersionString), load average at start \(load) (other builds share the machine)"
    }

    static func meminfoTotalKB() -> Int {
        let text = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("MemTotal:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    mutating func add(_ row: Row) {
        rows.append(row)
        print("[\(row.benchmark)] \(row.metric): \(row.value)\(row.target.isEmpty ? "" : "  (target \(row.target): \(row.verdict))")")
        fflush(stdout)
    }

    var markdown: String {
        var text = "Run \(date), commit `\(commit)`, \(machine).\n\n"
        text += "Parameters: " + parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + "\n\n"
        text += "| benchmark | metric | measured | target | verdict |\n| --- | --- | --- | --- | --- |\n"
        for row in rows { text += "| \(row.benchmark) | \(row.metric) | \(row.value) | \(row.target) | \(row.verdict) |\n" }
        if !notes.isEmpty { text += "\n" + notes.map { "- \($0)" }.joined(separator: "\n") + "\n" }
        return text
    }

    func write(to directory: String, name: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // A benchmark that did not converge has no latencies: its numbers are written as "nan".
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let json = try encoder.encode(self)
        try json.write(to: URL(fileURLWithPath: "\(directory)/\(name).json"))
        try markdown.write(toFile: "\(directory)/\(name).md", atomically: true, encoding: .utf8)
        print("wrote \(directory)/\(name).json and .md")
    }
}

func verdict(_ met: Bool) -> String { met ? "met" : "**missed**" }
/// `1.2 MB`, or `34.5 KB` below a tenth of a megabyte (a change that sends little must not read as 0.0 MB).
func megabytes(_ bytes: Int) -> String {
    bytes < 104_858 ? String(format: "%.1f KB", Double(bytes) / 1024) : String(format: "%.1f MB", Double(bytes) / 1_048_576)
}
func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
