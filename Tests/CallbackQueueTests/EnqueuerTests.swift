import CallbackQueue
import Foundation
import PayhookCore
import Logging
import Postgres
import PostgresTestSupport
import Testing

/// Group commit: every caller gets its own row's id, and only after the commit.
@Suite struct EnqueuerTests {
    @Test func concurrentCallersGetTheirOwnRowsInSharedCommits() async throws {
        let database = try TestDatabase.create()
        var configuration = Enqueuer.Configuration(connection: .init(conninfo: database.url))
        configuration.writers = 2
        let enqueuer = Enqueuer(configuration: configuration, logger: Logger(label: "test"))
        enqueuer.start()
        let results = try await withThrowingTaskGroup(of: (Int, Int64).self) { group in
            for index in 0..<400 {
                group.addTask { (index, try await enqueuer.enqueue(QueueTestData.callback(index))) }
            }
            return try await group.reduce(into: [(Int, Int64)]()) { $0.append($1) }
        }
        await enqueuer.shutdown()
        #expect(Set(results.map(\.1)).count == 400)
        let connection = try database.connect()
        for (index, id) in results {
            let body = try connection.query("SELECT body FROM callback_payloads WHERE id = $1", [.int64(id)])[0]
                .decode(0, as: [UInt8].self)
            #expect(body == QueueTestData.callback(index).body, "id \(id) must hold the body of caller \(index)")
        }
        let transactions = try connection.query(
            "SELECT count(DISTINCT xmin::text::bigint) FROM callback_payloads")[0].decode(0, as: Int.self)
        #expect(transactions < 400)  // commits were shared
    }

    @Test func shutDownEnqueuerRefusesNewWork() async throws {
        let database = try TestDatabase.create()
        let enqueuer = Enqueuer(configuration: .init(connection: .init(conninfo: database.url)), logger: Logger(label: "test"))
        enqueuer.start()
        await enqueuer.shutdown()
        await #expect(throws: Enqueuer.EnqueueError.self) { try await enqueuer.enqueue(QueueTestData.callback(1)) }
    }

    @Test func databaseDownAnswersQuicklyWithAnError() async throws {
        var configuration = Enqueuer.Configuration(connection: .init(conninfo: "postgres://postgres@127.0.0.1:1/none"))
        configuration.commitTimeout = .seconds(1)
        let enqueuer = Enqueuer(configuration: configuration, logger: Logger(label: "test"))
        enqueuer.start()
        let start = ContinuousClock.now
        await #expect(throws: Enqueuer.EnqueueError.self) { try await enqueuer.enqueue(QueueTestData.callback(1)) }
        #expect(ContinuousClock.now - start < .seconds(10), "bounded by the commit timeout, not hanging")
        await enqueuer.shutdown()
    }

    /// Producers stream callbacks while the server is killed (`pg_ctl stop -m immediate`)
    /// and restarted: every id handed to a caller is in the table afterwards, callers
    /// during the outage got errors, and the enqueuer recovers by itself.
    @Test(.timeLimit(.minutes(2))) func acknowledgedRowsSurviveACrash() async throws {
        let cluster = try TestCluster.start()
        defer { cluster.remove() }
        let admin = try Connection(cluster.url())
        try admin.query("CREATE DATABASE payhook")
        try SchemaMigrations.apply(QueueSchema.migrations, on: try Connection(cluster.url(database: "payhook")))

        var configuration = Enqueuer.Configuration(connection: .init(conninfo: cluster.url(database: "payhook")))
        configuration.commitTimeout = .seconds(1)
        configuration.connection.connectTimeoutSeconds = 1
        let enqueuer = Enqueuer(configuration: configuration, logger: Logger(label: "test"))
        enqueuer.start()

        struct Tally: Sendable { var acknowledged: [Int64: Int] = [:]; var failed = 0; var acknowledgedAfterRestart = 0 }
        let tally = Locked(Tally())
        let phase = Locked(0)  // 0 before the crash, 1 during, 2 after the restart
        let stop = Locked(false)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producer in 0..<16 {
                group.addTask {
                    var index = producer * 1_000_000
                    while !stop.value {
                        index += 1
                        do {
                            let id = try await enqueuer.enqueue(QueueTestData.callback(index))
                            let restarted = phase.value == 2
                            tally.withLock {
                                $0.acknowledged[id] = index
                                if restarted { $0.acknowledgedAfterRestart += 1 }
                            }
                        } catch {
                            tally.withLock { $0.failed += 1 }
                            try await Task.sleep(for: .milliseconds(20))
                        }
                    }
                }
            }
            try await Task.sleep(for: .seconds(1))
            phase.withLock { $0 = 1 }
            try cluster.crash()
            try await Task.sleep(for: .seconds(1))
            try cluster.restart()
            phase.withLock { $0 = 2 }
            try await Task.sleep(for: .seconds(2))
            stop.withLock { $0 = true }
            try await group.waitForAll()
        }
        await enqueuer.shutdown()

        let result = tally.value
        #expect(result.acknowledged.count > 100)
        #expect(result.failed > 0, "callers during the outage must get errors")
        #expect(result.acknowledgedAfterRestart > 0, "the enqueuer must recover by itself")
        let connection = try Connection(cluster.url(database: "payhook"))
        let ids = Array(result.acknowledged.keys)
        let stored = try connection.query("""
            SELECT id, body FROM callback_payloads JOIN callback_jobs ON callback_id = id WHERE id = ANY($1)
            """, [.int64Array(ids)])
        #expect(stored.count == ids.count, "every acknowledged callback must be stored")
        for row in stored.rows {
            let index = result.acknowledged[try row.decode(0, as: Int64.self)]!
            #expect(try row.decode(1, as: [UInt8].self) == QueueTestData.callback(index).body)
        }
    }
}
