import CallbackQueue
import Foundation
import PayhookCore
import Postgres
import PostgresTestSupport
import Testing
import Workers

/// `0008_queue_partitions` turns a running, unpartitioned queue into the partitioned one:
/// rows in every state and their leases come through unchanged, a batch holding its leases
/// is waited for, and the receivers' inserts during the upgrade are either refused (before
/// it; the channel retries) or stored exactly once.
@Suite struct PartitionUpgradeTests {
    static let before = PayhookSchema.migrations.filter { $0.id < "0008" }

    /// Rows as the previous version wrote them, one per state, plus `bulk` finished ones.
    static func seedOldQueue(_ connection: Connection, bulk: Int) throws -> [String: Int64] {
        var ids: [String: Int64] = [:]
        let states: [(name: String, sql: String)] = [
            ("due", "'pending', 0, now() - interval '1 second', NULL, NULL"),
            ("retrying", "'pending', 2, now() + interval '1 hour', NULL, NULL"),
            ("leased", "'processing', 1, now(), 'old-worker/0', now() + interval '1 hour'"),
            ("expired", "'processing', 1, now(), 'gone-worker/0', now() - interval '1 second'"),
            ("done", "'done', 1, now(), NULL, NULL"),
            ("rejected", "'rejected', 1, now(), NULL, NULL"),
            ("dead", "'dead', 12, now(), NULL, NULL"),
        ]
        for (index, state) in states.enumerated() {
            ids[state.name] = try connection.query("""
                WITH p AS (
                    INSERT INTO callback_payloads (channel, kind, received_at, source_ip, method, path, query,
                                                   header_names, header_values, body)
                    VALUES ('alipay', 'notify', now() - interval '2 days' + $1 * interval '1 minute', '203.0.113.9',
                            'POST', '/notify/alipay', 'q=1', ARRAY['Host', 'X-R'], ARRAY['a.example'::bytea, '1'::bytea],
                            convert_to('out_trade_no=U' || $1, 'UTF8'))
                    RETURNING id),
                j AS (
                    INSERT INTO callback_jobs (callback_id, channel, state, attempts, next_attempt_at, locked_by,
                                               locked_until, reason, out_trade_no)
                    SELECT id, 'alipay', \(state.sql), CASE WHEN $2 = 'rejected' THEN 'bad_signature' END, 'U' || $1 FROM p),
                a AS (
                    INSERT INTO callback_attempts (callback_id, attempt, worker, started_at, outcome)
                    SELECT id, 1, 'old-worker/0', now(), 'retry' FROM p)
                SELECT id FROM p
                """, [.int64(Int64(index)), .text(state.name)])[0].decode(0)
        }
        try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor, status, paid_at) VALUES ('U4', 'alipay', 100, 'paid', now())")
        try connection.query("""
            INSERT INTO order_events (out_trade_no, callback_id, source, kind, from_status, to_status)
            VALUES ('U4', $1, 'callback', 'transition', 'created', 'paid')
            """, [.int64(ids["done"]!)])
        try connection.query("""
            WITH p AS (
                INSERT INTO callback_payloads (channel, kind, received_at, method, path, header_names, header_values, body)
                SELECT 'wechatpay', 'notify', now() - interval '1 day' + g * interval '1 millisecond', 'POST',
                       '/notify/wechatpay', '{}', '{}', convert_to(repeat('x', 1200), 'UTF8')
                FROM generate_series(1, $1) AS g
                RETURNING id)
            INSERT INTO callback_jobs (callback_id, channel, state, attempts) SELECT id, 'wechatpay', 'done', 1 FROM p
            """, [.int64(Int64(bulk))])
        return ids
    }

    /// Every column an operator can see, per callback up to `maxID`, and every attempt, as text.
    static func snapshot(_ connection: Connection, maxID: Int64) throws -> [String] {
        try connection.query("""
            SELECT (id, channel, kind, received_at, source_ip, peer_ip, method, path, query, headers::text, body, state,
                    attempts, next_attempt_at, locked_by, locked_until, last_error, reason, out_trade_no,
                    channel_trade_no, updated_at)::text
            FROM callbacks WHERE id <= $1 ORDER BY id
            """, [.int64(maxID)]).rows.map { try $0.decode(0) }
            + connection.query("""
                SELECT (id, callback_id, attempt, worker, started_at, finished_at, outcome, reason, error)::text
                FROM callback_attempts ORDER BY id
                """).rows.map { try $0.decode(0) }
    }

    @Test(.timeLimit(.minutes(2))) func aRunningQueueIsPartitionedInPlace() async throws {
        let database = try TestDatabase.create(migrated: false)
        let setup = try database.connect()
        try SchemaMigrations.apply(Self.before, on: setup)
        let bulk = 50_000
        let ids = try Self.seedOldQueue(setup, bulk: bulk)
        let oldMax: Int64 = try setup.query("SELECT max(id) FROM callback_payloads")[0].decode(0)
        let before = try Self.snapshot(setup, maxID: oldMax)

        // A worker mid-batch: its apply transaction holds the lease fence on its row.
        let worker = try database.connect()
        try worker.query("BEGIN")
        try worker.query("SELECT callback_id FROM callback_jobs WHERE callback_id = $1 AND locked_by = 'old-worker/0' FOR UPDATE",
                         [.int64(ids["leased"]!)])

        struct Inserts: Sendable { var stored: [Int64] = []; var refused = 0 }
        let inserts = Locked(Inserts())
        let stop = Locked(false)
        let migrated = Locked<ContinuousClock.Instant?>(nil)
        let committedAt = Locked<ContinuousClock.Instant?>(nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {  // a receiver's enqueue writer, inserting throughout
                try await onOwnThread {
                    let connection = try database.connect()
                    var index = 0
                    while !stop.value {
                        index += 1
                        do {
                            let stored = try QueueStore.insert([RawCallback(channel: "alipay", body: Array("n=\(index)".utf8),
                                                                            sourceIP: "203.0.113.1")], on: connection)
                            inserts.withLock { $0.stored += stored }
                        } catch {
                            inserts.withLock { $0.refused += 1 }  // the receiver answers 503; the channel retries
                        }
                        Thread.sleep(forTimeInterval: 0.002)
                    }
                }
            }
            group.addTask {
                try await onOwnThread {
                    let connection = try database.connect()
                    try PayhookSchema.migrate(on: connection)
                    let done = ContinuousClock.now
                    migrated.withLock { $0 = done }
                }
            }
            try await Task.sleep(for: .milliseconds(500))
            #expect(migrated.value == nil, "the upgrade waits for the batch holding its leases")
            try worker.query("COMMIT")
            let committed = ContinuousClock.now
            committedAt.withLock { $0 = committed }
            while migrated.value == nil { try await Task.sleep(for: .milliseconds(20)) }
            let storedAtUpgrade = inserts.value.stored.count
            while inserts.value.stored.count < storedAtUpgrade + 20 { try await Task.sleep(for: .milliseconds(10)) }
            stop.withLock { $0 = true }
            try await group.waitForAll()
        }
        let pause = try #require(migrated.value) - (try #require(committedAt.value))
        print("0008_queue_partitions over \(bulk + ids.count) callbacks took \(pause) after the held batch committed")

        let connection = try database.connect()
        #expect(try Self.snapshot(connection, maxID: oldMax) == before, "every old row and attempt, unchanged")
        let stored = inserts.value.stored
        #expect(stored.count >= 20, "inserts go on after the upgrade")
        #expect(stored.allSatisfy { $0 > oldMax }, "identities continue after the old ones")
        let present: Int = try connection.query("SELECT count(DISTINCT id) FROM callbacks WHERE id = ANY($1)",
                                                [.int64Array(stored)])[0].decode(0)
        #expect(present == stored.count, "every acknowledged insert stored, once")
        #expect(try connection.query("SELECT count(*) = count(DISTINCT id) FROM callback_payloads")[0].decode(0, as: Bool.self))
        #expect(try connection.query("SELECT count(*) FROM order_events WHERE callback_id = $1", [.int64(ids["done"]!)])[0]
                .decode(0, as: Int.self) == 1)
        let legacy: Int = try connection.query("""
            SELECT count(*) FROM queue_partitions WHERE parent = 'callback_jobs' AND NOT is_default
            """)[0].decode(0)
        #expect(legacy == 1, "everything received before went into one partition")

        // The lease taken before the upgrade still fences: its holder finishes, no one else claims it.
        let held = try #require(try connection.query(
            "SELECT received_at FROM callback_jobs WHERE callback_id = $1", [.int64(ids["leased"]!)]).rows.first)
        let others = try QueueStore(workerID: "new-worker/0").claim(limit: 100, on: connection)
        #expect(Set(others.map(\.id)).isSuperset(of: [ids["due"]!, ids["expired"]!]))
        #expect(!others.contains { $0.id == ids["leased"]! || $0.id == ids["retrying"]! })
        #expect(others.first { $0.id == ids["expired"]! }?.attempt == 2, "the expired lease is taken over")
        let oldWorker = QueueStore(workerID: "old-worker/0")
        let finish = QueueStore.Finish(callbackID: ids["leased"]!, receivedAt: try held.decode(0), attempt: 1,
                                       startedAt: Date(), outcome: .done)
        #expect(try oldWorker.finish([finish], on: connection).isEmpty, "the lease holder's finish is accepted")
        #expect(try connection.query("SELECT state FROM callback_jobs WHERE callback_id = $1", [.int64(ids["leased"]!)])[0]
                .decode(0, as: String.self) == "done")
    }
}
