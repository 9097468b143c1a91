// The workers' drain benchmark (issue 5): N valid callbacks, half Alipay and half WeChat
// Pay, stored in the queue before the clock starts, for orders that exist; the simulated
// channels answer the query API in this process (answers signed before the clock starts);
// `payhook work` drains the queue. Prints the drain rate, the CPU per callback of
// `payhook work`, PostgreSQL and this process (the simulated channels), the signature floor
// measured in the same run, and checks every order is paid exactly once.
//
//   DrainBenchmark --database URL --payhook PATH --postmaster PID [--callbacks N] [--threads T]
//                  [--batch B] [--cross-check always|when_unverified]
import AsyncHTTPClient
import CallbackQueue
import Channels
import Dispatch
import Foundation
import NIOCore
import PayhookCore
import Postgres
import Simulator
import Workers

struct Options {
    var databaseURL = ""
    var payhook = ""
    var callbacks = 100_000
    var threads = 4
    var batch = 64
    var directory = ".run/drain-benchmark"
    var postmaster: pid_t = 0
    var crossCheck = "always"

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            let value = iterator.next() ?? ""
            switch flag {
            case "--database": databaseURL = value
            case "--payhook": payhook = value
            case "--callbacks": callbacks = Int(value) ?? callbacks
            case "--threads": threads = Int(value) ?? threads
            case "--batch": batch = Int(value) ?? batch
            case "--dir": directory = value
            case "--postmaster": postmaster = pid_t(value) ?? 0
            case "--cross-check": crossCheck = value
            default: fatalError("unknown flag \(flag)")
            }
        }
        precondition(!databaseURL.isEmpty && !payhook.isEmpty && postmaster > 0,
                     "--database, --payhook and --postmaster are required")
        precondition(["always", "when_unverified"].contains(crossCheck), "--cross-check always or when_unverified")
    }
}

func log(_ text: String) {
    FileHandle.standardError.write(Data("[drain] \(text)\n".utf8))
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// A TCP port nothing listens on now (bound to port 0, then closed), for the worker's metrics.
func unusedPort() -> Int {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
    }
    precondition(bound, "cannot bind a port for the worker's metrics")
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The value of one series in a Prometheus text page (0 when absent).
func metric(_ name: String, in page: String) -> Double {
    for line in page.split(separator: "\n") where line.hasPrefix(name + " ") {
        return Double(line.split(separator: " ").last ?? "") ?? 0
    }
    return 0
}

/// Runs `body` for each index across the cores.
func concurrently(_ count: Int, _ body: @Sendable (Int) -> Void) {
    DispatchQueue.concurrentPerform(iterations: count, execute: body)
}

final class Slots<Value>: @unchecked Sendable {
    // @unchecked because each index is written by one concurrentPerform iteration only.
    var values: [Value?]
    init(_ count: Int) { values = Array(repeating: nil, count: count) }
}

/// utime+stime of a process in clock ticks (0 once it is gone).
func ticks(_ pid: pid_t, children: Bool = false) -> Int {
    guard let line = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = line.lastIndex(of: ")") else { return 0 }
    let fields = line[line.index(after: close)...].split(separator: " ")
    // After the name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    let own = Int(fields[11])! + Int(fields[12])!
    return children ? own + Int(fields[13])! + Int(fields[14])! : own
}

/// The cluster's CPU: the postmaster with the children it has reaped, and every live child.
/// (Counting reaped children keeps the sum from falling when a backend exits.)
func postgresTicks(_ postmaster: pid_t) -> Int {
    var total = ticks(postmaster, children: true)
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = pid_t(entry), let line = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = line.lastIndex(of: ")") else { continue }
        let fields = line[line.index(after: close)...].split(separator: " ")
        if pid_t(fields[1]) == postmaster { total += Int(fields[11])! + Int(fields[12])! }
    }
    return total
}

/// The floor of a cross-checked Alipay or WeChat Pay callback on one core: one RSA-2048
/// signature (the query request) and two verifications (the notify and the query's
/// answer), with libcrypto as the workers use it; µs of CPU, the median of five 1 s slices.
func floorMicroseconds() -> Double {
    let key = RSAPrivateKey.generate()
    let message = Array(repeating: UInt8(ascii: "a"), count: 700)
    let signature = key.signSHA256(message)
    let publicKey = key.publicKey
    var slices: [Double] = []
    for _ in 0..<5 {
        let start = ContinuousClock.now
        var count = 0
        while seconds(since: start) < 1 {
            for _ in 0..<10 {
                precondition(key.signSHA256(message).count == 256)
                precondition(publicKey.isValidSHA256Signature(signature, for: message))
                precondition(publicKey.isValidSHA256Signature(signature, for: message))
            }
            count += 10
        }
        slices.append(seconds(since: start) * 1e6 / Double(count))
    }
    return slices.sorted()[2]
}

let options = Options(CommandLine.arguments)
let connection = try Connection(options.databaseURL)
try PayhookSchema.migrate(on: connection)
// The partitions ahead, as `payhook migrate` makes them: the callbacks land in today's
// partition, not the default one the workers' maintainer would move them out of mid-drain.
_ = try QueueMaintenance(settings: PartitionSettings()).ensurePartitions(on: connection)
try connection.execute(script: "TRUNCATE webhook_attempts, webhook_deliveries, order_outbox, callback_payloads, callback_jobs, callback_attempts, order_events, orders CASCADE")

let channels = SimulatedChannels.generate()
let simulator = ChannelSimulator(channels: channels)
let server = try await ChannelSimulatorServer.start(simulator)
let folder = SimulatorDirectory(path: options.directory)
try folder.writeKeys(channels, baseURL: server.baseURL)
let configuration = try folder.writeConfiguration(channels, baseURL: server.baseURL, options: .init(
    databaseURL: options.databaseURL, receiverListen: "127.0.0.1:0", crossCheck: options.crossCheck))
let floorBefore = floorMicroseconds()

log("signing \(options.callbacks) notifies (not timed)")
let prepareClock = ContinuousClock.now
let factory = NotifyFactory(channels: channels)
let orders = (0..<options.callbacks).map { index in
    ChannelOrder(outTradeNo: "DR-\(index)", channelTradeNo: "CT-DR-\(index)", status: .paid,
                 amountMinor: Int64(100 + index % 100_000), paidAt: Date(timeIntervalSince1970: 1_800_000_000))
}
func channel(_ index: Int) -> String { index % 2 == 0 ? SimulatedChannels.alipayID : SimulatedChannels.wechatPayID }
let signed = Slots<RawCallback>(orders.count)
concurrently(orders.count) { index in
    let notify = factory.notify(.valid, channel: channel(index), order: orders[index], eventID: "EV-\(index)")
    signed.values[index] = RawCallback(
        channel: notify.channel, method: "POST", path: "/notify/\(notify.channel)", headers: notify.headers,
        body: notify.body, sourceIP: "127.0.0.1", peerIP: "127.0.0.1")
}
for (index, order) in orders.enumerated() { simulator.setOrder(channel: channel(index), order) }
await simulator.prepare()
log(String(format: "signed notifies and query answers in %.1f s", seconds(since: prepareClock)))

let callbacks = signed.values.map { $0! }
for start in stride(from: 0, to: orders.count, by: 1000) {
    let slice = start..<min(start + 1000, orders.count)
    try connection.query("""
        INSERT INTO orders (out_trade_no, channel, amount_minor)
        SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
        """, [.textArray(slice.map { orders[$0].outTradeNo }), .textArray(slice.map { channel($0) }),
              .int64Array(slice.map { orders[$0].amountMinor })])
    _ = try QueueStore.insert(Array(callbacks[slice]), on: connection)
}
try connection.execute(script: "VACUUM ANALYZE callback_jobs")
try connection.execute(script: "VACUUM ANALYZE callback_payloads")
try connection.execute(script: "VACUUM ANALYZE orders")
try connection.execute(script: "CHECKPOINT")
log("\(options.callbacks) callbacks pre-ingested; starting payhook work (\(options.threads) threads, batch \(options.batch))")

// The worker: a real `payhook work` process, its log in the benchmark's folder.
var environment = ProcessInfo.processInfo.environment
environment["PAYHOOK_WORKER_THREADS"] = String(options.threads)
environment["PAYHOOK_WORKER_BATCH_SIZE"] = String(options.batch)
environment["PAYHOOK_RECONCILE_ENABLED"] = "false"
let metricsPort = unusedPort()
environment["PAYHOOK_WORKER_METRICS_LISTEN"] = "127.0.0.1:\(metricsPort)"
let arguments: [String] = [options.payhook, "work", "--config", configuration]
let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
var actions = posix_spawn_file_actions_t()
posix_spawn_file_actions_init(&actions)
let workerLog = options.directory + "/worker.log"
posix_spawn_file_actions_addopen(&actions, 1, workerLog, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
posix_spawn_file_actions_adddup2(&actions, 1, 2)
var worker: pid_t = 0
let clock = ContinuousClock.now
let postgres0 = postgresTicks(options.postmaster), self0 = ticks(getpid())
guard posix_spawn(&worker, options.payhook, &actions, nil, argv, envp) == 0 else { fatalError("cannot start payhook work") }

var lastLeft = options.callbacks
var lastReport = ContinuousClock.now
// Every 100 ms whether any unfinished row is left (one partial-index probe); the count only
// every 5 s: counting every 100 ms cost PostgreSQL about 27 µs per callback
// (pg_stat_statements), charged to Payhook's share.
while true {
    let unfinished = try connection.query(
        "SELECT EXISTS (SELECT FROM callback_jobs WHERE state IN ('pending', 'processing'))")[0].decode(0, as: Bool.self)
    if !unfinished { break }
    if seconds(since: lastReport) >= 5 {
        let left = try connection.query("SELECT count(*) FROM callback_jobs WHERE state IN ('pending', 'processing')")[0]
            .decode(0, as: Int.self)
        log(String(format: "%d left, %.0f/s over the last 5 s", left, Double(lastLeft - left) / seconds(since: lastReport)))
        lastLeft = left
        lastReport = ContinuousClock.now
    }
    if seconds(since: clock) > 900 { fatalError("the queue did not drain in 15 minutes") }
    try await Task.sleep(for: .milliseconds(100))
}
let elapsed = seconds(since: clock)
let workerTicks = ticks(worker), postgresUsed = postgresTicks(options.postmaster) - postgres0
let selfUsed = ticks(getpid()) - self0
// Round trips per batch, as the worker counted them on its connections (claim to commit).
let page = try await HTTPClient.shared.get(url: "http://127.0.0.1:\(metricsPort)/metrics").get()
let pageText = page.body.map { String(buffer: $0) } ?? ""
let batches = metric("payhook_worker_batch_round_trips_count", in: pageText)
let roundTrips = metric("payhook_worker_batch_round_trips_sum", in: pageText)
kill(worker, SIGTERM)
var status: Int32 = 0
waitpid(worker, &status, 0)
await server.stop()

let totals = try connection.query("""
    SELECT (SELECT count(*) FROM orders WHERE status = 'paid'),
           (SELECT count(*) FROM callback_jobs WHERE state = 'done'),
           (SELECT count(*) FROM order_events WHERE kind = 'transition')
    """)[0]
let paid = try totals.decode(0, as: Int.self)
let done = try totals.decode(1, as: Int.self)
let transitions = try totals.decode(2, as: Int.self)
let queries = simulator.queryCount(channel: SimulatedChannels.alipayID) + simulator.queryCount(channel: SimulatedChannels.wechatPayID)
let correct = paid == options.callbacks && done == options.callbacks && transitions == options.callbacks
let verdict = correct ? "every order paid exactly once" : "MISMATCH: \(paid) paid, \(done) done, \(transitions) transitions"
let floorAfter = floorMicroseconds()
let floor = (floorBefore + floorAfter) / 2
let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
func perCallback(_ used: Int) -> Double { Double(used) / hz * 1e6 / Double(options.callbacks) }
let workerUS = perCallback(workerTicks), postgresUS = perCallback(postgresUsed), channelsUS = perCallback(selfUsed)
print(String(format: "payhook drain (cross_check: %@): %d callbacks in %.2f s = %.0f callbacks/s", options.crossCheck,
             options.callbacks, elapsed, Double(options.callbacks) / elapsed) + " (\(queries) query API calls; \(verdict))")
print(String(format: "CPU per callback: payhook work %.0f µs, PostgreSQL %.0f µs, simulated channels and this monitor %.0f µs; "
             + "floor %.0f µs (one RSA-2048 sign + two verifies, one core, %.0f / %.0f before / after); payhook work / floor = %.2f",
             workerUS, postgresUS, channelsUS, floor, floorBefore, floorAfter, workerUS / floor))
print(String(format: "database round trips per batch: %.2f over %.0f batches (%.1f callbacks a batch)",
             batches > 0 ? roundTrips / batches : 0, batches, batches > 0 ? Double(options.callbacks) / batches : 0))
print(String(format: "PAYHOOK_RATE=%.0f", Double(options.callbacks) / elapsed))
print(String(format: "PAYHOOK_ROUND_TRIPS=%.2f", batches > 0 ? roundTrips / batches : 0))
print(String(format: "PAYHOOK_CPU=%.0f %.0f %.0f %.0f", workerUS, postgresUS, channelsUS, floor))
exit(correct ? 0 : 1)
