import CallbackQueue
import Foundation
import PayhookCore
import Postgres
import PostgresTestSupport
import Testing

/// Claim and finish against a real PostgreSQL: exactly-once under concurrency, the lease
/// fence, retries and releases, and plans without table scans.
@Suite struct QueueStoreTests {
    let database: TestDatabase

    init() throws { database = try TestDatabase.create() }

    @Test func storedRowKeepsBytesAndHeadersVerbatim() throws {
        let connection = try database.connect()
        var callback = QueueTestData.callback(7)
        callback.body = [0x00, 0xFF, 0x25, 0x32, 0x30] + Array("中文&sign=abc==".utf8)
        callback.query = "a=1&a=2"
        callback.headers.append(HeaderField(name: "X-Odd", value: "quote\" back\\slash \u{01}\ttab 中文 ✓"))
        let id = try QueueStore.insert([callback], on: connection)[0]
        let row = try connection.query("""
            SELECT channel, kind, source_ip, method, path, query, headers, body, state, attempts
            FROM callbacks WHERE id = $1
            """, [.int64(id)])[0]
        #expect(try row.decode(0, as: String.self) == "alipay")
        #expect(try row.decode(1, as: String.self) == "notify")
        #expect(try row.decode(2, as: String.self) == "203.0.113.7")
        #expect(try row.decode(5, as: String.self) == "a=1&a=2")
        #expect(try row.decode(7, as: [UInt8].self) == callback.body)
        #expect(try row.decode(8, as: String.self) == "pending")
        #expect(try row.decode(9, as: Int.self) == 0)

        let claimed = try QueueStore(workerID: "w").claim(limit: 10, on: connection)
        #expect(claimed.count == 1)
        let stored = try claimed[0].stored.get()
        #expect(stored.headers == callback.headers)  // order and repeats kept
        #expect(stored.body == callback.body)
        #expect(claimed[0].attempt == 1)
    }

    @Test func eightClaimersFinishEveryRowExactlyOnce() async throws {
        let setup = try database.connect()
        let total = 20_000
        var expected: Set<Int64> = []
        for start in stride(from: 0, to: total, by: 1000) {
            expected.formUnion(try QueueStore.insert((start..<start + 1000).map { QueueTestData.callback($0) }, on: setup))
        }
        try setup.query("ANALYZE callback_jobs")
        let plans = try QueueStore(workerID: "explain").explainHotPath(on: setup)
        // The partition holding the rows is read through its indexes; the planner may scan an
        // empty partition (ahead, or the default) directly, at no cost.
        for (statement, plan) in plans {
            let scans = plan.split(separator: "\n").filter { $0.contains("Seq Scan on callback_") }
            #expect(scans.allSatisfy { $0.contains("cost=0.00..0.00") }, "\(statement):\n\(plan)")
        }
        let finishPlan = try #require(plans.first { $0.statement == "finish" }?.plan)
        #expect(finishPlan.contains(/Index Scan using callback_jobs_p\d+t\d+_pkey/), "finish must touch rows by primary key")
        let claimPlan = try #require(plans.first { $0.statement == "claim" }?.plan)
        #expect(claimPlan.contains(/Index Scan using callback_jobs_p\d+t\d+_next_attempt_at_idx/), "claim reads due rows by index")

        let claimedByWorker = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for worker in 0..<8 {
                group.addTask {
                    let connection = try database.connect()
                    let store = QueueStore(workerID: "worker-\(worker)")
                    var mine: [Int64] = []
                    while true {
                        let batch = try store.claim(limit: 64, on: connection)
                        if batch.isEmpty { break }
                        let refused = try store.finish(batch.map {
                            QueueStore.Finish($0, startedAt: Date(), outcome: .done)
                        }, on: connection)
                        #expect(refused.isEmpty)
                        mine += batch.map(\.id)
                    }
                    return mine
                }
            }
            return try await group.reduce(into: [[Int64]]()) { $0.append($1) }
        }
        let all = claimedByWorker.flatMap { $0 }
        #expect(all.count == total)
        #expect(Set(all) == expected)
        #expect(claimedByWorker.filter { !$0.isEmpty }.count > 1)  // the work really was shared
        let check = try database.connect()
        let counts = try check.query("""
            SELECT (SELECT count(*) FROM callback_jobs WHERE state = 'done' AND attempts = 1),
                   (SELECT count(*) FROM callback_attempts WHERE outcome = 'done'),
                   (SELECT count(DISTINCT callback_id) FROM callback_attempts)
            """)[0]
        #expect(try counts.decode(0, as: Int.self) == total)
        #expect(try counts.decode(1, as: Int.self) == total)
        #expect(try counts.decode(2, as: Int.self) == total)
    }

    @Test func expiredLeaseIsTakenOverAndTheLateFinishIsFenced() throws {
        let connection = try database.connect()
        let id = try QueueStore.insert([QueueTestData.callback(1)], on: connection)[0]
        let slow = QueueStore(workerID: "slow", leaseSeconds: 0.2)
        let fast = QueueStore(workerID: "fast", leaseSeconds: 30)

        let first = try slow.claim(limit: 1, on: connection)
        #expect(first.map(\.id) == [id])
        #expect(try fast.claim(limit: 1, on: connection).isEmpty)  // lease still held
        Thread.sleep(forTimeInterval: 0.3)
        let second = try fast.claim(limit: 1, on: connection)
        #expect(second.map(\.id) == [id])
        #expect(second[0].attempt == 2)

        let refused = try slow.finish([QueueStore.Finish(first[0], startedAt: Date(), outcome: .done)], on: connection)
        #expect(refused == [id])
        let row = try connection.query("SELECT state, locked_by FROM callback_jobs WHERE callback_id = $1", [.int64(id)])[0]
        #expect(try row.decode(0, as: String.self) == "processing")
        #expect(try row.decode(1, as: String.self) == "fast")

        #expect(try fast.finish([QueueStore.Finish(second[0], startedAt: Date(), outcome: .done)],
                                on: connection).isEmpty)
        let outcomes = try connection.query(
            "SELECT worker, outcome FROM callback_attempts WHERE callback_id = $1 ORDER BY id", [.int64(id)]
        ).rows.map { "\(try $0.decode(0, as: String.self)):\(try $0.decode(1, as: String.self))" }
        #expect(outcomes == ["slow:lease_lost", "fast:done"])
    }

    @Test func aRowThatDoesNotReadBackIsClaimedAsCorruptNotAsEmptyHeaders() throws {
        let connection = try database.connect()
        let ids = try QueueStore.insert([QueueTestData.callback(1), QueueTestData.callback(2)], on: connection)
        try connection.query("UPDATE callback_payloads SET header_names[1] = NULL WHERE id = $1", [.int64(ids[0])])
        let claimed = try QueueStore(workerID: "w").claim(limit: 2, on: connection).sorted { $0.id < $1.id }
        #expect(claimed.map(\.channel) == ["alipay", "alipay"])
        guard case .failure(let corrupt) = claimed[0].stored else { Issue.record("expected a corrupt row"); return }
        #expect(corrupt.column == "headers" && corrupt.problem.contains("NULL element"))
        #expect(try claimed[1].stored.get().headers.count == 3)
    }

    @Test func retryWaitsReleaseReturnsAtOnceRejectAndDeadAreRecorded() throws {
        let connection = try database.connect()
        let ids = try QueueStore.insert((0..<4).map { QueueTestData.callback($0) }, on: connection)
        let store = QueueStore(workerID: "w")
        let claimed = try store.claim(limit: 4, on: connection)
        #expect(claimed.count == 4)
        let outcomes: [AttemptOutcome] = [
            .retry(afterSeconds: 60, reason: .queryUnavailable, error: "HTTP 503"),
            .released,
            .rejected(reason: .badSignature, error: "signature does not verify"),
            .dead(reason: .queryUnavailable, error: "budget spent"),
        ]
        try store.finish(zip(claimed, outcomes).map {
            QueueStore.Finish($0, startedAt: Date(), outcome: $1,
                              outTradeNo: "T\($0.id)")
        }, on: connection)

        let rows = try connection.query("""
            SELECT callback_id, state, attempts, next_attempt_at > now() + interval '50 seconds', reason, last_error,
                   out_trade_no, locked_by
            FROM callback_jobs ORDER BY callback_id
            """).rows
        #expect(try rows.map { try $0.decode(1, as: String.self) } == ["pending", "pending", "rejected", "dead"])
        #expect(try rows[0].decode(3, as: Bool.self))  // retry is due in a minute
        #expect(try rows[0].decode(2, as: Int.self) == 1)
        #expect(try rows[1].decode(2, as: Int.self) == 0)  // release gives the attempt back
        #expect(try rows[2].decode(4, as: String.self) == "bad_signature")
        #expect(try rows[3].decode(5, as: String.self) == "budget spent")
        #expect(try rows[0].decode(6, as: String.self) == "T\(ids[0])")
        #expect(try rows.allSatisfy { try $0.decode(7, as: String?.self) == nil })

        // Only the released row is due again now.
        #expect(try store.claim(limit: 10, on: connection).map(\.id) == [ids[1]])
    }
}

/// Dead letters: listed, replayed with a fresh budget, and the replay recorded.
@Suite struct DeadLetterTests {
    let database: TestDatabase

    init() throws { database = try TestDatabase.create() }

    @Test func replayPutsOnlyDeadCallbacksBackWithAFreshBudget() throws {
        let connection = try database.connect()
        let ids = try QueueStore.insert([QueueTestData.callback(1), QueueTestData.callback(2)], on: connection)
        let store = QueueStore(workerID: "w")
        let claimed = try store.claim(limit: 2, on: connection)
        try store.finish([
            QueueStore.Finish(claimed[0], startedAt: Date(),
                              outcome: .dead(reason: .queryUnavailable, error: "timeout"), outTradeNo: "T1"),
            QueueStore.Finish(claimed[1], startedAt: Date(), outcome: .done),
        ], on: connection)

        let dead = try DeadLetters.list(on: connection)
        #expect(dead.map(\.callbackID) == [ids[0]])
        #expect(dead.first?.reason == "query_unavailable")
        #expect(dead.first?.outTradeNo == "T1")

        let replayed = try DeadLetters.replay(ids, operatorName: "test", on: connection)
        #expect(replayed == [ids[0]])  // the done one is left alone
        let row = try connection.query("SELECT state, attempts FROM callback_jobs WHERE callback_id = $1", [.int64(ids[0])])[0]
        #expect(try row.decode(0, as: String.self) == "pending")
        #expect(try row.decode(1, as: Int.self) == 0)
        let logged = try connection.query(
            "SELECT worker FROM callback_attempts WHERE callback_id = $1 AND outcome = 'replayed'", [.int64(ids[0])])
        #expect(try logged.rows.map { row throws(PostgresError) in try row.decode(0, as: String.self) } == ["test"])
        #expect(try DeadLetters.list(on: connection).isEmpty)
        // Claimable again at once.
        #expect(try store.claim(limit: 5, on: connection).map(\.id) == [ids[0]])
    }
}
