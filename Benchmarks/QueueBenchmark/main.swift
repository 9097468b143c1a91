// The queue benchmark: group-commit enqueue and batched claim+finish, each against the
// plain way measured in the same run (one INSERT and one commit per row; one claim per
// row), printed as rows/s and ratios. Run through `Benchmarks/queue`, which starts a
// throwaway PostgreSQL and builds in release mode.
import CallbackQueue
import Foundation
import Logging
import PayhookCore
import Postgres
import Synchronization

struct Options {
    var url = ProcessInfo.processInfo.environment["PAYHOOK_DATABASE_URL"] ?? ""
    var seconds = 20.0
    var prefillRows = 1_000_000
    var producers = [1, 16, 64]
    var workers = [1, 2, 4]
    /// The same tables unpartitioned, to measure what partitioning costs (same statements).
    var flat = false

    init() {
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = arguments.next() {
            switch argument {
            case "--seconds": seconds = Double(arguments.next() ?? "") ?? seconds
            case "--prefill": prefillRows = Int(arguments.next() ?? "") ?? prefillRows
            case "--url": url = arguments.next() ?? url
            case "--producers": producers = (arguments.next() ?? "").split(separator: ",").compactMap { Int($0) }
            case "--workers": workers = (arguments.next() ?? "").split(separator: ",").compactMap { Int($0) }
            case "--flat": flat = true
            default:
                say("usage: QueueBenchmark [--seconds S] [--prefill ROWS] [--producers 1,16,64] [--workers 1,2,4] [--flat] [--url URL]")
                exit(2)
            }
        }
    }
}

/// Unbuffered output, so progress shows through a pipe.
func say(_ line: String = "") {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

let options = Options()
guard !options.url.isEmpty else {
    say("set PAYHOOK_DATABASE_URL or pass --url")
    exit(2)
}
let configuration = Connection.Configuration(conninfo: options.url)

// `--flat`: each queue table replaced by one plain table with the same columns, keys and
// indexes, so the hot statements run unchanged on an unpartitioned queue.
if options.flat {
    let connection = try Connection(configuration: configuration)
    try connection.execute(script: """
        DROP VIEW callbacks, queue_partitions;
        CREATE TABLE callback_payloads_flat (LIKE callback_payloads INCLUDING ALL);
        CREATE TABLE callback_jobs_flat (LIKE callback_jobs INCLUDING ALL)
            WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
                  autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
        CREATE TABLE callback_attempts_flat (LIKE callback_attempts INCLUDING ALL);
        DROP TABLE callback_payloads, callback_jobs, callback_attempts;
        ALTER TABLE callback_payloads_flat RENAME TO callback_payloads;
        ALTER TABLE callback_jobs_flat RENAME TO callback_jobs;
        ALTER TABLE callback_attempts_flat RENAME TO callback_attempts;
        CREATE VIEW queue_partitions AS
            SELECT c.relname::text AS parent, c.relname::text AS partition, NULL::timestamptz AS lower_bound,
                   NULL::timestamptz AS upper_bound, true AS is_default, pg_total_relation_size(c.oid) AS total_bytes,
                   pg_indexes_size(c.oid) AS index_bytes, c.reltuples::bigint AS estimated_rows
            FROM pg_class c WHERE c.oid IN ('callback_payloads'::regclass, 'callback_jobs'::regclass,
                                            'callback_attempts'::regclass);
        """)
}

func callback(_ index: Int) -> RawCallback {
    // An Alipay-sized notify: ~1.5 KB stored per row with headers.
    let body = "gmt_create=2026-11-27+10%3A00%3A00&charset=utf-8&notify_id=\(index)&out_trade_no=T\(index)&"
        + "total_amount=88.88&trade_status=TRADE_SUCCESS&sign=" + String(repeating: "A", count: 1100)
    return RawCallback(channel: "alipay", method: "POST", path: "/notify/alipay",
                       headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded"),
                                 HeaderField(name: "User-Agent", value: "Mozilla/4.0")],
                       body: Array(body.utf8), sourceIP: "203.0.113.9", peerIP: "127.0.0.1")
}

func resetQueue() throws {
    let connection = try Connection(configuration: configuration)
    try connection.execute(script: """
        TRUNCATE webhook_attempts, webhook_deliveries, order_outbox, callback_attempts, callback_jobs, callback_payloads, order_events, orders RESTART IDENTITY CASCADE;
        CHECKPOINT;
        """)
}

/// Runs `body` on `threads` threads until the deadline; each returns rows done.
func measure(threads: Int, seconds: Double, _ body: @escaping @Sendable (Int, ContinuousClock.Instant) throws -> Int) -> Double {
    let total = Mutex(0)
    let failures = Mutex<[String]>([])
    let group = DispatchGroup()
    let start = ContinuousClock.now
    let deadline = start + .milliseconds(Int(seconds * 1000))
    for index in 0..<threads {
        group.enter()
        Thread {
            do {
                let count = try body(index, deadline)
                total.withLock { $0 += count }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
            group.leave()
        }.start()
    }
    group.wait()
    let elapsed = ContinuousClock.now - start
    if let failure = failures.withLock({ $0.first }) { say("  failure: \(failure)") }
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Double(total.withLock { $0 }) / seconds
}

func groupCommitRate(producers: Int) async throws -> Double {
    var settings = Enqueuer.Configuration(connection: configuration)
    settings.commitTimeout = .seconds(10)
    let enqueuer = Enqueuer(configuration: settings, logger: Logger(label: "bench"))
    enqueuer.start()
    let sample = callback(1)
    let start = ContinuousClock.now
    let deadline = start + .milliseconds(Int(options.seconds * 1000))
    let count = try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<producers {
            group.addTask {
                var done = 0
                while ContinuousClock.now < deadline {
                    _ = try await enqueuer.enqueue(sample)
                    done += 1
                }
                return done
            }
        }
        return try await group.reduce(0, +)
    }
    let elapsed = ContinuousClock.now - start
    await enqueuer.shutdown()
    return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

func plainInsertRate(producers: Int) -> Double {
    let sample = callback(1)
    return measure(threads: producers, seconds: options.seconds) { _, deadline in
        let connection = try Connection(configuration: configuration)
        var done = 0
        while ContinuousClock.now < deadline {
            _ = try QueueStore.insert([sample], on: connection)
            done += 1
        }
        return done
    }
}

func prefill(_ rows: Int) throws {
    let connection = try Connection(configuration: configuration)
    try resetQueue()
    let started = ContinuousClock.now
    let sample = callback(1)
    let batch = [RawCallback](repeating: sample, count: 1000)
    var inserted = 0
    while inserted < rows {
        inserted += try QueueStore.insert(Array(batch.prefix(rows - inserted)), on: connection).count
    }
    for statement in ["VACUUM ANALYZE callback_jobs", "VACUUM ANALYZE callback_payloads", "CHECKPOINT"] {
        try connection.execute(script: statement)  // VACUUM refuses to run in a multi-statement block
    }
    say("  prefilled \(rows) rows in \(ContinuousClock.now - started)")
}

func claimFinishRate(workers: Int, batch: Int) -> Double {
    measure(threads: workers, seconds: options.seconds) { index, deadline in
        let connection = try Connection(configuration: configuration)
        let store = QueueStore(workerID: "bench-\(index)")
        var done = 0
        while ContinuousClock.now < deadline {
            let claimed = try store.claim(limit: batch, on: connection)
            if claimed.isEmpty { break }
            let started = Date()
            try store.finish(claimed.map {
                QueueStore.Finish($0, startedAt: started, outcome: .done)
            }, on: connection)
            done += claimed.count
        }
        return done
    }
}

func format(_ rate: Double) -> String { String(format: "%9.0f rows/s", rate) }

let layout = options.flat ? "unpartitioned tables (--flat)"
    : "partitioned: \(try Connection(configuration: configuration).query("SELECT count(*) FROM queue_partitions WHERE parent = 'callback_jobs'")[0].decode(0, as: Int.self)) partitions of callback_jobs"
say("Payhook queue benchmark: \(options.seconds) s a measurement, \(ProcessInfo.processInfo.activeProcessorCount) cores, \(layout)")
say()
say("Enqueue, ~1.5 KB rows, synchronous_commit on:")
say("  producers   group commit        one row per commit   ratio")
for producers in options.producers {
    try resetQueue()
    let grouped = try await groupCommitRate(producers: producers)
    try resetQueue()
    let plain = plainInsertRate(producers: producers)
    say(String(format: "  %9d   %@   %@   %5.1fx", producers, format(grouped), format(plain), grouped / plain))
}
say()
say("Claim + finish over \(options.prefillRows) pre-filled rows:")
say("  workers     batches of 100      one row per claim    ratio")
for workers in options.workers {
    try prefill(options.prefillRows)
    let batched = claimFinishRate(workers: workers, batch: 100)
    try prefill(options.prefillRows)
    let plain = claimFinishRate(workers: workers, batch: 1)
    say(String(format: "  %7d     %@   %@   %5.1fx", workers, format(batched), format(plain), batched / plain))
}
say()
say("Hot-path plans (EXPLAIN over the pre-filled table):")
for (statement, plan) in try QueueStore(workerID: "explain").explainHotPath(on: Connection(configuration: configuration)) {
    say("-- \(statement)")
    say(plan.split(separator: "\n").map { "   " + $0 }.joined(separator: "\n"))
}
say()
// What the hot path writes per callback: WAL and table bytes over `walRows` callbacks
// inserted in batches of 64 (as group commit makes them), then claimed and finished in
// batches of 64, after a checkpoint (so each page's first change costs its full image,
// as it does once per checkpoint in steady state).
let walRows = 64_000
try resetQueue()
let walConnection = try Connection(configuration: configuration)
func walPosition(_ walConnection: Connection) throws -> Int64 {
    try walConnection.query("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")[0].decode(0)
}
func queueBytes(_ walConnection: Connection) throws -> Int64 {
    try walConnection.query("SELECT sum(total_bytes)::bigint FROM queue_partitions")[0].decode(0)
}
let sample = callback(1)
let walStart = try walPosition(walConnection)
let bytesStart = try queueBytes(walConnection)
for _ in 0..<(walRows / 64) { _ = try QueueStore.insert([RawCallback](repeating: sample, count: 64), on: walConnection) }
let walInserted = try walPosition(walConnection)
let store = QueueStore(workerID: "wal")
while true {
    let claimed = try store.claim(limit: 64, on: walConnection)
    if claimed.isEmpty { break }
    try store.finish(claimed.map { QueueStore.Finish($0, startedAt: Date(), outcome: .done) }, on: walConnection)
}
let walFinished = try walPosition(walConnection)
let bytesEnd = try queueBytes(walConnection)
say("Bytes per callback over \(walRows) (~1.5 KB notifies, batches of 64, after a checkpoint):")
say(String(format: "  WAL: enqueue %.0f, claim + finish %.0f, total %.0f; on disk (tables and indexes) %.0f",
           Double(walInserted - walStart) / Double(walRows), Double(walFinished - walInserted) / Double(walRows),
           Double(walFinished - walStart) / Double(walRows), Double(bytesEnd - bytesStart) / Double(walRows)))
