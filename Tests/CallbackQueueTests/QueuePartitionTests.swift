import CallbackQueue
import Foundation
import PayhookCore
import Postgres
import PostgresTestSupport
import Testing

/// The partitioned queue against a real PostgreSQL: rows land in their partition, strays
/// in the default one move out, retention drops only what is old and final, and a boundary
/// crossed under load loses nothing.
@Suite struct QueuePartitionTests {
    let database: TestDatabase

    init() throws { database = try TestDatabase.create(partitioned: false) }

    /// Whole seconds, rounded down: a time rounded up could be half a second ahead, and a
    /// callback "received" then would not yet be due.
    func now(_ connection: Connection) throws -> Int64 {
        try connection.query("SELECT floor(extract(epoch FROM now()))::bigint")[0].decode(0)
    }

    func partition(of id: Int64, _ connection: Connection) throws -> [String] {
        try connection.query("""
            SELECT tableoid::regclass::text FROM callback_payloads WHERE id = $1
            UNION ALL SELECT tableoid::regclass::text FROM callback_jobs WHERE callback_id = $1
            """, [.int64(id)]).rows.map { try $0.decode(0) }
    }

    func callback(_ index: Int, receivedAt: Int64) -> RawCallback {
        var callback = QueueTestData.callback(index)
        callback.receivedAt = Date(timeIntervalSince1970: Double(receivedAt) + 0.000123)
        return callback
    }

    @Test func rowsLandInTheirPartitionAndAStrayMovesOutOfTheDefault() throws {
        let connection = try database.connect()
        var settings = PartitionSettings()
        settings.intervalSeconds = 60
        settings.ahead = 2
        let report = try #require(try QueueMaintenance(settings: settings).ensurePartitions(on: connection))
        #expect(report.error == nil)
        let now = try now(connection)
        let id = try QueueStore.insert([callback(1, receivedAt: now - now % 60)], on: connection)[0]
        let suffix = QueueMaintenance.suffix(now - now % 60)
        #expect(try partition(of: id, connection) == ["callback_payloads" + suffix, "callback_jobs" + suffix])

        // Before every partition: the insert still succeeds, into the default partition.
        let later = now - now % 60 - 3600
        let stray = try QueueStore.insert([callback(2, receivedAt: later + 5)], on: connection)[0]
        #expect(try partition(of: stray, connection) == ["callback_payloads_default", "callback_jobs_default"])
        let made: Bool = try connection.query("SELECT payhook_queue_add_partition(to_timestamp($1), to_timestamp($2))",
                                              [.int64(later), .int64(later + 60)])[0].decode(0)
        #expect(made)
        let moved = QueueMaintenance.suffix(later)
        #expect(try partition(of: stray, connection) == ["callback_payloads" + moved, "callback_jobs" + moved])

        let claimed = try QueueStore(workerID: "w").claim(limit: 10, on: connection)
        #expect(Set(claimed.map(\.id)) == [id, stray])
        #expect(claimed.allSatisfy { (try? $0.stored.get().body) != nil }, "payloads read back from both partitions")
        let refused = try QueueStore(workerID: "w").finish(claimed.map { QueueStore.Finish($0, startedAt: Date(), outcome: .done) },
                                                            on: connection)
        #expect(refused.isEmpty, "the fence finds each row by id and received time")
        #expect(try connection.query("SELECT count(*) FROM callback_attempts WHERE outcome = 'done'")[0].decode(0, as: Int.self) == 2)
    }

    /// Old partitions with rows in every state, and an order whose events name them: the
    /// finished go with their partition, the rest are carried whole into the default one.
    @Test func retentionDropsWhatIsOldAndFinishedAndKeepsTheRest() throws {
        let connection = try database.connect()
        let now = try now(connection)
        let base = now - now % 60 - 3600
        for offset: Int64 in [0, 60, 120] {
            try connection.query("SELECT payhook_queue_add_partition(to_timestamp($1), to_timestamp($2))",
                                 [.int64(base + offset), .int64(base + offset + 60)])
        }
        // Partition A: done, rejected, dead. B: one waiting for a retry. C: one under a lease.
        let a = try QueueStore.insert((0..<3).map { callback($0, receivedAt: base + 1) }, on: connection)
        let b = try QueueStore.insert([callback(3, receivedAt: base + 61)], on: connection)[0]
        let c = try QueueStore.insert([callback(4, receivedAt: base + 121)], on: connection)[0]
        let store = QueueStore(workerID: "w")
        let claimed = Dictionary(uniqueKeysWithValues: try store.claim(limit: 10, on: connection).map { ($0.id, $0) })
        try store.finish([
            QueueStore.Finish(claimed[a[0]]!, startedAt: Date(), outcome: .done),
            QueueStore.Finish(claimed[a[1]]!, startedAt: Date(), outcome: .rejected(reason: .badSignature, error: nil)),
            QueueStore.Finish(claimed[a[2]]!, startedAt: Date(), outcome: .dead(reason: .queryUnavailable, error: "gave up")),
            QueueStore.Finish(claimed[b]!, startedAt: Date(), outcome: .retry(afterSeconds: 3600, reason: nil, error: "later")),
        ], on: connection)
        try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor) VALUES ('R-1', 'alipay', 100)")
        try connection.query("""
            INSERT INTO order_events (out_trade_no, callback_id, source, kind, from_status, to_status)
            VALUES ('R-1', $1, 'callback', 'transition', 'created', 'paid')
            """, [.int64(a[0])])

        var settings = PartitionSettings()
        settings.intervalSeconds = 60
        settings.keepSeconds = 600
        let maintenance = QueueMaintenance(settings: settings)
        let report = try #require(try maintenance.run(on: connection))
        let (sa, sb, sc) = (QueueMaintenance.suffix(base), QueueMaintenance.suffix(base + 60), QueueMaintenance.suffix(base + 120))
        #expect(report.dropped == [sa, sb, sc])
        #expect(report.held.isEmpty)
        #expect(report.carried == 3, "the dead, the pending and the leased callback")
        #expect(!report.created.isEmpty, "partitions ahead made in the same run")
        #expect(report.error == nil)

        func exists(_ id: Int64) throws -> Bool {
            try connection.query("SELECT count(*) FROM callbacks WHERE id = $1", [.int64(id)])[0].decode(0, as: Int.self) == 1
        }
        #expect(try !exists(a[0]) && !exists(a[1]), "finished callbacks went with their partition")
        for id in [a[2], b, c] {
            #expect(try partition(of: id, connection) == ["callback_payloads_default", "callback_jobs_default"])
        }
        for id in [a[2], b] {  // c's attempt is in progress: no row yet
            #expect(try connection.query("SELECT count(*) FROM callback_attempts WHERE callback_id = $1", [.int64(id)])[0]
                    .decode(0, as: Int.self) == 1, "attempts carried with the callback")
        }
        let leased = try connection.query("SELECT state, locked_by, attempts FROM callback_jobs WHERE callback_id = $1",
                                          [.int64(c)])[0]
        #expect(try leased.decode(0, as: String.self) == "processing" && leased.decode(1, as: String.self) == "w"
                && leased.decode(2, as: Int.self) == 1, "carried with its lease")
        #expect(try connection.query("SELECT count(*) FROM order_events WHERE callback_id = $1", [.int64(a[0])])[0]
                .decode(0, as: Int.self) == 1, "orders and their events are never deleted")
        #expect(try connection.query("SELECT count(*) FROM orders")[0].decode(0, as: Int.self) == 1)

        // What `payhook status` shows.
        let storage = try QueueStorage.read(countingStates: true, on: connection)
        #expect(storage.lastRun?.partitionsDropped == 3 && storage.lastRun?.callbacksCarried == 3)
        let carried = try #require(storage.partitions.first { $0.isDefault })
        #expect(carried.pending == 1 && carried.processing == 1 && carried.dead == 1)
        #expect(storage.tableBytes.map(\.table) == ["callback_attempts", "callback_jobs", "callback_payloads"])

        // The lease still fences: no one else claims it, and its holder finishes it.
        #expect(try QueueStore(workerID: "other").claim(limit: 10, on: connection).isEmpty)
        #expect(try store.finish([QueueStore.Finish(claimed[c]!, startedAt: Date(), outcome: .done)], on: connection).isEmpty)
        // The dead callback older than retention can still be replayed, and is processed.
        #expect(try DeadLetters.replay([a[2]], operatorName: "ops", on: connection) == [a[2]])
        try connection.query("UPDATE callback_jobs SET next_attempt_at = now() WHERE callback_id = $1", [.int64(b)])
        let due = try store.claim(limit: 10, on: connection)
        #expect(Set(due.map(\.id)) == [a[2], b])
        #expect(try due.first { $0.id == a[2] }?.stored.get().body == QueueTestData.callback(2).body)
        #expect(try store.finish(due.map { QueueStore.Finish($0, startedAt: Date(), outcome: .done) }, on: connection).isEmpty)

        // Finished now, and older than retention: pruned from the default partition by row.
        let second = try #require(try maintenance.run(on: connection))
        #expect(second.dropped.isEmpty)
        #expect(second.defaultPruned == 3)
        #expect(try connection.query("SELECT count(*) FROM callbacks")[0].decode(0, as: Int.self) == 0)
        #expect(try connection.query("SELECT count(*) FROM callback_attempts")[0].decode(0, as: Int.self) == 0)
        #expect(try connection.query("SELECT count(*) FROM order_events")[0].decode(0, as: Int.self) == 1)
    }

    /// A backlog larger than a drop carries holds its partition back, and says so.
    @Test func aBacklogHoldsItsPartitionBack() throws {
        let connection = try database.connect()
        let now = try now(connection)
        let base = now - now % 60 - 3600
        try connection.query("SELECT payhook_queue_add_partition(to_timestamp($1), to_timestamp($2))",
                             [.int64(base), .int64(base + 60)])
        let backlog = Int(QueueMaintenance.carryLimit) + 1
        for start in stride(from: 0, to: backlog, by: 2000) {
            _ = try QueueStore.insert((start..<min(start + 2000, backlog)).map { callback($0, receivedAt: base + 1) },
                                      on: connection)
        }
        var settings = PartitionSettings()
        settings.intervalSeconds = 60
        settings.keepSeconds = 600
        let report = try #require(try QueueMaintenance(settings: settings).run(on: connection))
        let suffix = QueueMaintenance.suffix(base)
        #expect(report.held == [QueueMaintenance.Held(suffix: suffix, unfinished: Int64(backlog))])
        #expect(report.dropped.isEmpty)
        #expect(try connection.query("SELECT count(*) FROM callback_jobs")[0].decode(0, as: Int.self) == backlog)
        let storage = try QueueStorage.read(countingStates: true, on: connection)
        #expect(storage.lastRun?.heldPartitions == 1 && storage.lastRun?.heldCallbacks == Int64(backlog))
        #expect(storage.partitions.first { $0.suffix == suffix }?.pending == Int64(backlog))
    }

    @Test func oneMaintainerAtATime() throws {
        let first = try database.connect()
        let second = try database.connect()
        try first.query("SELECT pg_advisory_lock($1)", [.int64(0x7061_7968_6F6F_6B01)])
        #expect(try QueueMaintenance(settings: PartitionSettings()).run(on: second) == nil, "the other holds the lock")
        try first.query("SELECT pg_advisory_unlock($1)", [.int64(0x7061_7968_6F6F_6B01)])
        #expect(try QueueMaintenance(settings: PartitionSettings()).run(on: second) != nil)
    }

    /// One-second partitions, kept three seconds, made and dropped by a maintainer every
    /// 100 ms while four producers insert and four workers claim: nothing refused, lost or
    /// finished twice.
    @Test(.timeLimit(.minutes(2))) func boundariesCrossedUnderLoadLoseNothing() async throws {
        var settings = PartitionSettings()
        settings.intervalSeconds = 1
        settings.ahead = 2
        settings.keepSeconds = 3
        let maintenance = QueueMaintenance(settings: settings)
        let stop = Locked(false)
        let producing = Locked(true)
        struct Tally: Sendable {
            var inserted: [Int64] = []
            var finished: [Int64] = []
            var errors: [String] = []
            var created = 0
            var dropped = 0
        }
        let tally = Locked(Tally())
        let database = database
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await onOwnThread {
                let connection = try database.connect()
                while !stop.value {
                    do {
                        if let report = try maintenance.run(on: connection) {
                            tally.withLock { $0.created += report.created.count; $0.dropped += report.dropped.count }
                        }
                    } catch {
                        tally.withLock { $0.errors.append("maintainer: \(error)") }
                    }
                    Thread.sleep(forTimeInterval: 0.1)
                }
            } }
            for producer in 0..<4 {
                group.addTask { try await onOwnThread {
                    let connection = try database.connect()
                    var index = producer * 1_000_000
                    while producing.value {
                        let batch = (0..<20).map { _ in index += 1; return QueueTestData.callback(index) }
                        do {
                            let ids = try QueueStore.insert(batch, on: connection)
                            tally.withLock { $0.inserted += ids }
                        } catch {
                            tally.withLock { $0.errors.append("producer: \(error)") }
                        }
                        Thread.sleep(forTimeInterval: 0.005)
                    }
                } }
            }
            for worker in 0..<4 {
                group.addTask { try await onOwnThread {
                    let connection = try database.connect()
                    let store = QueueStore(workerID: "w\(worker)")
                    while !stop.value {
                        do {
                            let claimed = try store.claim(limit: 32, on: connection)
                            if claimed.isEmpty { Thread.sleep(forTimeInterval: 0.005); continue }
                            let refused = try store.finish(
                                claimed.map { QueueStore.Finish($0, startedAt: Date(), outcome: .done) }, on: connection)
                            tally.withLock { $0.finished += claimed.map(\.id).filter { !refused.contains($0) } }
                        } catch {
                            tally.withLock { $0.errors.append("worker: \(error)") }
                        }
                    }
                } }
            }
            // At least 8 s (eight boundaries) and 1,200 callbacks: beside the concurrent suites
            // on two cores the producers once stored only 100 in 8 s; give them up to 40 s.
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .seconds(8)
                || tally.value.inserted.count < 1_200 && ContinuousClock.now - started < .seconds(40) {
                try await Task.sleep(for: .milliseconds(200))
            }
            producing.withLock { $0 = false }
            // Let the workers drain what is left.
            let check = try database.connect()
            for _ in 0..<800 {
                let left: Int = try check.query("SELECT count(*) FROM callback_jobs WHERE state <> 'done'")[0].decode(0)
                if left == 0 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            stop.withLock { $0 = true }
            try await group.waitForAll()
        }
        let result = tally.value
        #expect(result.errors.isEmpty, "\(result.errors.prefix(5))")
        #expect(result.inserted.count > 1000)
        #expect(Set(result.finished).count == result.finished.count, "no callback finished twice")
        #expect(Set(result.finished) == Set(result.inserted), "every stored callback finished")
        #expect(result.created >= 6, "partitions made during the run: \(result.created)")
        #expect(result.dropped >= 3, "partitions dropped during the run: \(result.dropped)")
    }
}
