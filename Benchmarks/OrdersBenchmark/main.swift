// Orders through the site API (`POST /v1/orders`) against `payhook sim channels`, per
// scene: a closed loop at saturation, then an open loop at half the measured rate with
// latency from each request's scheduled send time (so a queue in front of the server is
// counted, not hidden), beside the raw RSA-2048 signing rate of two threads measured in
// the same run (libcrypto through `Channels.RSAPrivateKey`, what Payhook signs with).
// Run by `Benchmarks/orders`, which starts PostgreSQL, the simulator and `payhook serve`.
//
//     OrdersBenchmark --api http://127.0.0.1:PORT --token-file DIR/secrets/admin.token
//         [--seconds 15] [--warmup 2] [--connections 32] [--client-threads 1]
//         [--scenes alipay:page,alipay:qr,wechatpay:native,wechatpay:jsapi,points:deduct]
//         [--sign-seconds 4] [--sign-threads 2] [--round 1] [--results FILE.tsv]
//         [--watch NAME=PID]... [--watch-tree NAME=PID]...
//
// `--watch` samples one process's CPU from /proc at the start and end of every measured
// phase, `--watch-tree` a process and its children (the postmaster); the generator's own
// CPU and the whole machine's are always sampled. Every answer must be 201 with the
// scene's front-end fields; a phase with any failure makes the exit status 1.
import AsyncHTTPClient
import Channels
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

// MARK: Options

struct Options {
    var api = ""
    var tokenFile = ""
    var seconds = 15.0
    var warmup = 2.0
    var connections = 32
    var clientThreads = 1
    var scenes = ["alipay:page", "alipay:qr", "wechatpay:native", "wechatpay:jsapi", "points:deduct"]
    var signSeconds = 4.0
    var signThreads = 2
    var round = "1"
    var results: String?
    var watch: [(name: String, pid: Int32, tree: Bool)] = []

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var rest = arguments[...]
        func value(_ flag: String) -> String {
            guard let next = rest.popFirst() else { fail("\(flag) needs a value") }
            return next
        }
        func number(_ flag: String) -> Double {
            guard let n = Double(value(flag)), n > 0 else { fail("\(flag) must be a positive number") }
            return n
        }
        func watched(_ flag: String, tree: Bool) -> (String, Int32, Bool) {
            let text = value(flag)
            guard let equals = text.firstIndex(of: "="), let pid = Int32(text[text.index(after: equals)...]) else {
                fail("\(flag) takes NAME=PID")
            }
            return (String(text[..<equals]), pid, tree)
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--api": options.api = value(flag)
            case "--token-file": options.tokenFile = value(flag)
            case "--seconds": options.seconds = number(flag)
            case "--warmup": options.warmup = Double(value(flag)) ?? 2
            case "--connections": options.connections = Int(number(flag))
            case "--client-threads": options.clientThreads = Int(number(flag))
            case "--scenes": options.scenes = value(flag).split(separator: ",").map(String.init)
            case "--sign-seconds": options.signSeconds = number(flag)
            case "--sign-threads": options.signThreads = Int(number(flag))
            case "--round": options.round = value(flag)
            case "--results": options.results = value(flag)
            case "--watch": options.watch.append(watched(flag, tree: false))
            case "--watch-tree": options.watch.append(watched(flag, tree: true))
            default: fail("unknown argument \(flag)")
            }
        }
        guard !options.api.isEmpty, !options.tokenFile.isEmpty else { fail("--api and --token-file are required") }
        return options
    }
}

/// One line to stdout, unbuffered, so the script's log shows each phase as it ends.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("OrdersBenchmark: \(message)\n".utf8))
    exit(2)
}

// MARK: Scenes

/// One channel and scene: the body it sends and what its answer must hold.
struct Scene: Sendable {
    var channel: String
    var scene: String
    /// The `payer` object, where the scene needs one.
    var payer: String?
    /// `pay` members that must be non-empty strings (none for a deduct settled at once).
    var payFields: [String]
    /// The order's status in the answer: `paid` for a points deduct the partner settled.
    var orderStatus = "created"

    var name: String { "\(channel):\(scene)" }

    static func named(_ name: String) -> Scene? {
        switch name {
        case "alipay:page", "alipay:wap": Scene(channel: "alipay", scene: String(name.dropFirst(7)), payFields: ["pay_url", "form_html"])
        case "alipay:app": Scene(channel: "alipay", scene: "app", payFields: ["order_string"])
        case "alipay:qr": Scene(channel: "alipay", scene: "qr", payFields: ["qr_code"])
        case "wechatpay:native": Scene(channel: "wechatpay", scene: "native", payFields: ["code_url"])
        case "wechatpay:jsapi":
            Scene(channel: "wechatpay", scene: "jsapi", payer: #"{"openid":"oBenchmarkOpenID0001"}"#,
                  payFields: ["appId", "timeStamp", "nonceStr", "package", "signType", "paySign"])
        case "wechatpay:h5":
            Scene(channel: "wechatpay", scene: "h5", payer: #"{"client_ip":"203.0.113.7"}"#, payFields: ["h5_url"])
        case "points:deduct":
            Scene(channel: "points", scene: "deduct", payer: #"{"user_id":"bench-user-1"}"#, payFields: [], orderStatus: "paid")
        default: nil
        }
    }

    func body(outTradeNo: String) -> String {
        var text = #"{"out_trade_no":"\#(outTradeNo)","channel":"\#(channel)","scene":"\#(scene)","amount":"12.34","subject":"Payhook benchmark order""#
        if let payer { text += #","payer":\#(payer)"# }
        return text + "}"
    }

    /// nil when the answer is what the scene promises, else why not.
    func problem(status: UInt, body: [UInt8], outTradeNo: String) -> String? {
        guard status == 201 else { return "status \(status): \(String(decoding: body.prefix(160), as: UTF8.self))" }
        guard let json = try? JSONValue.parse(body) else { return "the answer is not JSON" }
        guard let order = json["order"], order["out_trade_no"]?.stringValue == outTradeNo else { return "another order" }
        guard order["amount"]?.stringValue == "12.34" else { return "amount \(order["amount"].map { "\($0)" } ?? "missing")" }
        guard order["status"]?.stringValue == orderStatus else {
            return "order status \(order["status"]?.stringValue ?? "missing"), expected \(orderStatus)"
        }
        for field in payFields {
            guard let value = json["pay"]?[field]?.stringValue, !value.isEmpty else { return "pay.\(field) missing" }
        }
        if scene == "jsapi" {
            guard json["pay"]?["package"]?.stringValue?.hasPrefix("prepay_id=") == true else { return "pay.package is not prepay_id=…" }
            guard let signature = json["pay"]?["paySign"]?.stringValue, Data(base64Encoded: signature)?.count == 256 else {
                return "pay.paySign is not an RSA-2048 signature"
            }
        }
        return nil
    }
}

// MARK: Measurements

struct Stats: Sendable {
    var ok = 0
    var failures = 0
    var failureSamples: [String] = []
    var latencies: [Int64] = []  // nanoseconds

    mutating func record(_ problem: String?, nanoseconds: Int64) {
        if let problem {
            failures += 1
            if failureSamples.count < 3 { failureSamples.append(problem) }
        } else {
            ok += 1
        }
        latencies.append(nanoseconds)
    }

    mutating func merge(_ other: Stats) {
        ok += other.ok
        failures += other.failures
        failureSamples += other.failureSamples.prefix(max(0, 3 - failureSamples.count))
        latencies += other.latencies
    }

    /// Milliseconds at quantile `q` (nearest rank), over every request answered or failed.
    func milliseconds(_ q: Double, sorted: [Int64]) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))
        return Double(sorted[rank]) / 1e6
    }
}

/// A box for values shared with threads and tasks.
final class Shared<Value: Sendable>: Sendable {
    let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
}

func nanoseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
}

/// CPU time from /proc, in clock ticks.
enum ProcCPU {
    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// utime+stime and the parent pid of one process (nil once it is gone).
    static func stat(_ path: String) -> (ticks: Int, parent: Int32)? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the name: state(0) ppid(1) … utime(11) stime(12).
        guard fields.count > 12, let parent = Int32(fields[1]), let user = Int(fields[11]), let system = Int(fields[12]) else {
            return nil
        }
        return (user + system, parent)
    }

    static func ticks(_ pid: Int32, tree: Bool) -> Int {
        var total = stat("/proc/\(pid)/stat")?.ticks ?? 0
        if tree, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") {
            for entry in entries where entry.first?.isNumber == true {
                if let child = stat("/proc/\(entry)/stat"), child.parent == pid { total += child.ticks }
            }
        }
        return total
    }

    /// Busy and total ticks of the whole machine (all cores), from /proc/stat.
    static func machine() -> (busy: Int, total: Int) {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first else { return (0, 0) }
        let values = line.split(separator: " ").dropFirst().compactMap { Int($0) }
        guard values.count >= 5 else { return (0, 0) }
        let total = values.prefix(8).reduce(0, +)
        return (total - values[3] - values[4], total)  // less idle and iowait
    }
}

struct CPUSample {
    var at = ContinuousClock.now
    var processes: [Int]
    var generator: Int
    var machine: (busy: Int, total: Int)

    init(_ watch: [(name: String, pid: Int32, tree: Bool)]) {
        processes = watch.map { ProcCPU.ticks($0.pid, tree: $0.tree) }
        generator = ProcCPU.ticks(getpid(), tree: false)
        machine = ProcCPU.machine()
        at = ContinuousClock.now
    }

    /// Percent of one core per watched process, then the generator, the machine (of all
    /// cores, 200% for two) and what the machine did beyond those ("others").
    static func shares(_ start: CPUSample, _ end: CPUSample) -> (processes: [Double], generator: Double, machine: Double, others: Double) {
        let seconds = Double(nanoseconds(end.at - start.at)) / 1e9
        func percent(_ ticks: Int) -> Double { Double(ticks) / ProcCPU.ticksPerSecond / seconds * 100 }
        let processes = zip(start.processes, end.processes).map { percent($1 - $0) }
        let generator = percent(end.generator - start.generator)
        let totalTicks = end.machine.total - start.machine.total
        let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
        let machine = totalTicks > 0 ? Double(end.machine.busy - start.machine.busy) / Double(totalTicks) * 100 * cores : 0
        return (processes, generator, machine, machine - processes.reduce(0, +) - generator)
    }
}

// MARK: Load

struct Target: Sendable {
    let client: HTTPClient
    let url: String
    let authorization: String

    func create(_ scene: Scene, outTradeNo: String) async -> String? {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: authorization)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: scene.body(outTradeNo: outTradeNo)))
        do {
            let response = try await client.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 20)
            return scene.problem(status: response.status.code, body: Array(buffer: body), outTradeNo: outTradeNo)
        } catch {
            return "request failed: \(error)"
        }
    }
}

/// Every connection sends its next order as soon as the last is answered, until `seconds` pass.
func closedLoop(_ target: Target, _ scene: Scene, connections: Int, seconds: Double, tag: String) async -> (Stats, Double) {
    let start = ContinuousClock.now
    let deadline = start + .nanoseconds(Int64(seconds * 1e9))
    let stats = await withTaskGroup(of: Stats.self) { group in
        for worker in 0..<connections {
            group.addTask {
                var stats = Stats()
                var sequence = 0
                while ContinuousClock.now < deadline {
                    let sent = ContinuousClock.now
                    let problem = await target.create(scene, outTradeNo: "\(tag)\(worker)N\(sequence)")
                    stats.record(problem, nanoseconds: nanoseconds(ContinuousClock.now - sent))
                    sequence += 1
                }
                return stats
            }
        }
        var total = Stats()
        for await part in group { total.merge(part) }
        return total
    }
    return (stats, Double(nanoseconds(ContinuousClock.now - start)) / 1e9)
}

/// Request i is due at start + i / rate, whether or not earlier ones were answered; its
/// latency runs from that due time, so time spent waiting to be sent is counted.
func openLoop(_ target: Target, _ scene: Scene, rate: Double, seconds: Double, tag: String) async -> (Stats, Double) {
    let shared = Shared(Stats())
    let count = max(1, Int(rate * seconds))
    let start = ContinuousClock.now + .milliseconds(5)
    func due(_ i: Int) -> ContinuousClock.Instant { start + .nanoseconds(Int64(Double(i) / rate * 1e9)) }
    await withDiscardingTaskGroup { group in
        var next = 0
        while next < count {
            let now = ContinuousClock.now
            while next < count, due(next) <= now {
                let scheduled = due(next)
                let outTradeNo = "\(tag)N\(next)"
                group.addTask {
                    let problem = await target.create(scene, outTradeNo: outTradeNo)
                    let latency = nanoseconds(ContinuousClock.now - scheduled)
                    shared.mutex.withLock { $0.record(problem, nanoseconds: latency) }
                }
                next += 1
            }
            guard next < count else { break }
            do { try await Task.sleep(until: due(next), tolerance: .microseconds(200)) } catch { break }
        }
    }
    return (shared.mutex.withLock { $0 }, Double(nanoseconds(ContinuousClock.now - start)) / 1e9)
}

/// Raw RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second over `threads` threads.
func signingRate(threads: Int, seconds: Double) -> Double {
    let key = RSAPrivateKey.generate()
    let message = Array(repeating: UInt8(ascii: "a"), count: 600)  // about a WeChat Pay prepay body
    let counts = Shared([Int](repeating: 0, count: threads))
    let done = DispatchGroup()
    let start = DispatchTime.now().uptimeNanoseconds
    let end = start + UInt64(seconds * 1e9)
    for thread in 0..<threads {
        done.enter()
        Thread.detachNewThread {
            var signed = 0
            while DispatchTime.now().uptimeNanoseconds < end {
                precondition(key.signSHA256(message).count == 256)
                signed += 1
            }
            counts.mutex.withLock { $0[thread] = signed }
            done.leave()
        }
    }
    done.wait()
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return Double(counts.mutex.withLock { $0.reduce(0, +) }) / elapsed
}

// MARK: Run

struct PhaseResult {
    var scene: String
    var phase: String
    var offered: Double?
    var stats: Stats
    var seconds: Double
    var p50 = 0.0, p99 = 0.0, max = 0.0
    var cpu: (processes: [Double], generator: Double, machine: Double, others: Double)

    var rate: Double { Double(stats.ok) / seconds }

    init(scene: String, phase: String, offered: Double?, stats: Stats, seconds: Double, start: CPUSample, end: CPUSample) {
        self.scene = scene
        self.phase = phase
        self.offered = offered
        self.stats = stats
        self.seconds = seconds
        let sorted = stats.latencies.sorted()
        p50 = stats.milliseconds(0.5, sorted: sorted)
        p99 = stats.milliseconds(0.99, sorted: sorted)
        max = sorted.last.map { Double($0) / 1e6 } ?? .nan
        cpu = CPUSample.shares(start, end)
    }
}

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
let scenes = options.scenes.map { name -> Scene in
    guard let scene = Scene.named(name) else { fail("unknown scene \(name)") }
    return scene
}
guard let token = try? String(contentsOfFile: options.tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
      !token.isEmpty else { fail("cannot read the token from \(options.tokenFile)") }

// Letters and digits only: the one alphabet all three channels take in out_trade_no.
let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ")
let runTag = "OB" + String((0..<5).map { _ in alphabet.randomElement()! })

say("signing: RSA-2048 (libcrypto), \(options.signThreads) threads, \(options.signSeconds) s")
let signBefore = signingRate(threads: options.signThreads, seconds: options.signSeconds)
say(String(format: "signing before the scenes: %.0f/s", signBefore))

let group = MultiThreadedEventLoopGroup(numberOfThreads: options.clientThreads)
var configuration = HTTPClient.Configuration()
configuration.httpVersion = .http1Only
configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = options.connections
let client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
let target = Target(client: client, url: options.api + "/v1/orders", authorization: "Bearer \(token)")

var results: [PhaseResult] = []
for (index, scene) in scenes.enumerated() {
    let tag = "\(runTag)\(index)"
    if options.warmup > 0 {
        let (warm, _) = await closedLoop(target, scene, connections: options.connections, seconds: options.warmup, tag: tag + "W")
        if warm.failures > 0 { say("\(scene.name) warm-up: \(warm.failures) failures, e.g. \(warm.failureSamples.first ?? "")") }
    }
    var start = CPUSample(options.watch)
    let (saturated, saturatedSeconds) = await closedLoop(target, scene, connections: options.connections,
                                                         seconds: options.seconds, tag: tag + "S")
    results.append(PhaseResult(scene: scene.name, phase: "saturation", offered: nil, stats: saturated,
                               seconds: saturatedSeconds, start: start, end: CPUSample(options.watch)))
    let half = max(1, results.last!.rate / 2)
    try await Task.sleep(for: .seconds(1))
    start = CPUSample(options.watch)
    let (fixed, fixedSeconds) = await openLoop(target, scene, rate: half, seconds: options.seconds, tag: tag + "R")
    results.append(PhaseResult(scene: scene.name, phase: "half-rate", offered: half, stats: fixed,
                               seconds: fixedSeconds, start: start, end: CPUSample(options.watch)))
    for result in results.suffix(2) {
        let cpu = zip(options.watch, result.cpu.processes).map { String(format: "%@ %.0f%%", $0.name, $1) }
        say(String(format: "%@ %@: %d ok, %d failed, %.0f/s; p50 %.1f ms, p99 %.1f ms, max %.1f ms; CPU %@, generator %.0f%%, machine %.0f%% (others %.0f%%)",
                     scene.name, result.phase + (result.offered.map { String(format: " (%.0f/s offered)", $0) } ?? ""),
                     result.stats.ok, result.stats.failures, result.rate, result.p50, result.p99, result.max,
                     cpu.joined(separator: ", "), result.cpu.generator, result.cpu.machine, result.cpu.others))
        for sample in result.stats.failureSamples { say("  failure: \(sample)") }
    }
    try await Task.sleep(for: .seconds(1))
}
try await client.shutdown().get()
try await group.shutdownGracefully()

let signAfter = signingRate(threads: options.signThreads, seconds: options.signSeconds)
let signing = (signBefore + signAfter) / 2
say(String(format: "signing after the scenes: %.0f/s; mean %.0f/s (%.0f/s a thread)",
             signAfter, signing, signing / Double(options.signThreads)))

// One TSV line per phase, for the script's table across rounds.
if let path = options.results {
    var lines = ""
    if !FileManager.default.fileExists(atPath: path) {
        lines += (["round", "scene", "phase", "offered", "ok", "failures", "seconds", "rate", "p50_ms", "p99_ms", "max_ms",
                   "sign_before", "sign_after"] + options.watch.map { "cpu_\($0.name)" } + ["cpu_generator", "cpu_machine", "cpu_others"])
            .joined(separator: "\t") + "\n"
    }
    for r in results {
        let fields: [String] = [options.round, r.scene, r.phase, r.offered.map { String(format: "%.0f", $0) } ?? "", String(r.stats.ok),
                                String(r.stats.failures), String(format: "%.2f", r.seconds), String(format: "%.1f", r.rate),
                                String(format: "%.2f", r.p50), String(format: "%.2f", r.p99), String(format: "%.2f", r.max),
                                String(format: "%.0f", signBefore), String(format: "%.0f", signAfter)]
            + (r.cpu.processes + [r.cpu.generator, r.cpu.machine, r.cpu.others]).map { String(format: "%.1f", $0) }
        lines += fields.joined(separator: "\t") + "\n"
    }
    let handle = FileHandle(forWritingAtPath: path) ?? {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return FileHandle(forWritingAtPath: path)!
    }()
    handle.seekToEndOfFile()
    handle.write(Data(lines.utf8))
    try handle.close()
}
exit(results.contains { $0.stats.failures > 0 } ? 1 : 0)
