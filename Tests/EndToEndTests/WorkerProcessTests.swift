import CallbackQueue
import Channels
import Foundation
import PayhookCore
import Postgres
import PostgresTestSupport
import Simulator
import Testing

/// `payhook work` processes sharing one database: every callback finished once, no order
/// moved twice, also while workers are killed with SIGKILL in the middle of batches.
@Suite(.serialized, .timeLimit(.minutes(6))) struct WorkerProcessTests {
    static let orders = 5000

    /// 5,000 orders (80% points, 10% each Alipay and WeChat Pay), each notified twice:
    /// 10,000 stored callbacks, inserted straight into the queue.
    func prepare(_ harness: PipelineHarness) async throws {
        let connection = try harness.database.connect()
        var callbacks: [RawCallback] = []
        var numbers: [String] = []
        for index in 0..<Self.orders {
            let channel = index % 10 == 0 ? "alipay" : index % 10 == 1 ? "wechatpay" : "points"
            let number = "MP-\(index)"
            numbers.append(number)
            let order = ChannelOrder(outTradeNo: number, channelTradeNo: "CT-\(number)", status: .paid,
                                     amountMinor: Int64(100 + index), paidAt: Date(timeIntervalSince1970: 1_800_000_000))
            harness.simulator.setOrder(channel: channel, order)
            let notify = harness.notifies.notify(.valid, channel: channel, order: order, eventID: "EV-\(index)")
            let stored = RawCallback(
                channel: channel, method: "POST", path: "/notify/\(channel)", headers: notify.headers, body: notify.body,
                sourceIP: "127.0.0.1", peerIP: "127.0.0.1")
            callbacks.append(stored)
            callbacks.append(stored)
            try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor) VALUES ($1, $2, $3)",
                                 [.text(number), .text(channel), .int64(Int64(100 + index))])
        }
        await harness.simulator.prepare()  // sign every answer before the workers ask
        for chunk in stride(from: 0, to: callbacks.count, by: 500) {
            _ = try QueueStore.insert(Array(callbacks[chunk..<min(chunk + 500, callbacks.count)]), on: connection)
        }
    }

    func startWorker(_ harness: PipelineHarness) throws -> ChildProcess {
        var environment = PipelineHarness.testOverrides
        environment["PAYHOOK_WORKER_LEASE_SECONDS"] = "2"
        environment["PAYHOOK_WORKER_BATCH_SIZE"] = "32"
        environment["PAYHOOK_RECONCILE_ENABLED"] = "false"
        return try ChildProcess(executable: ChildProcess.payhookExecutable,
                                arguments: ["work", "--config", harness.directory.configurationFile],
                                environment: environment)
    }

    func expectEverythingAppliedExactlyOnce(_ harness: PipelineHarness, workers: Int) throws {
        let connection = try harness.database.connect()
        func count(_ sql: String) throws -> Int { try connection.query(sql)[0].decode(0, as: Int.self) }
        #expect(try count("SELECT count(*) FROM callback_jobs WHERE state = 'done'") == 2 * Self.orders)
        #expect(try count("SELECT count(*) FROM callback_jobs WHERE state <> 'done'") == 0)
        #expect(try count("SELECT count(*) FROM orders WHERE status = 'paid'") == Self.orders)
        #expect(try count("SELECT count(*) FROM order_events WHERE kind = 'transition'") == Self.orders)
        // The outbox: one order.paid event per order, however the workers died.
        #expect(try count("SELECT count(*) FROM order_outbox WHERE kind = 'order.paid'") == Self.orders)
        #expect(try count("SELECT count(DISTINCT out_trade_no) FROM order_outbox") == Self.orders)
        #expect(try count("""
            SELECT count(*) FROM (SELECT out_trade_no FROM order_events WHERE kind = 'transition'
                                  GROUP BY out_trade_no HAVING count(*) > 1) twice
            """) == 0)
        #expect(try count("SELECT count(*) FROM order_events WHERE kind = 'duplicate'") == Self.orders)
        // Each callback finished once, whatever happened to the attempts before.
        #expect(try count("SELECT count(DISTINCT callback_id) FROM callback_attempts WHERE outcome = 'done'") == 2 * Self.orders)
        #expect(try count("SELECT count(*) FROM callback_attempts WHERE outcome = 'done'") == 2 * Self.orders)
        #expect(try count("SELECT count(*) FROM order_events WHERE flagged") == 0)
        #expect(try count("""
            SELECT count(DISTINCT split_part(worker, '/', 1)) FROM callback_attempts WHERE outcome = 'done'
            """) >= workers)
    }

    @Test func twoWorkerProcessesFinishTenThousandCallbacksOnce() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        try await prepare(harness)
        let workers = try (0..<2).map { _ in try startWorker(harness) }
        defer {
            for worker in workers { worker.signal(SIGKILL); worker.wait() }
        }
        try await harness.waitForDrain(timeout: .seconds(240))
        try expectEverythingAppliedExactlyOnce(harness, workers: 2)
        // SIGTERM: each stops claiming, finishes its batch, exits 0.
        for worker in workers { worker.signal(SIGTERM) }
        for worker in workers {
            let status = worker.wait()
            #expect(status & 0x7f == 0 && (status >> 8) & 0xff == 0, "exit status \(status)")
        }
    }

    @Test func killedWorkersLoseNothingAndApplyNothingTwice() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        try await prepare(harness)
        var workers = try (0..<2).map { _ in try startWorker(harness) }
        // Kill one worker in the middle of its batches, again and again, and replace it.
        let connection = try harness.database.connect()
        var kills = 0
        for round in 0..<8 {
            try await Task.sleep(for: .milliseconds(600))
            let victim = round % 2
            workers[victim].signal(SIGKILL)
            workers[victim].wait()
            kills += 1
            workers[victim] = try startWorker(harness)
            let open = try connection.query(
                "SELECT count(*) FROM callback_jobs WHERE state IN ('pending', 'processing')")[0].decode(0, as: Int.self)
            if open == 0 { break }
        }
        try await harness.waitForDrain(timeout: .seconds(240))
        for worker in workers { worker.signal(SIGKILL); worker.wait() }
        #expect(kills >= 2)
        try expectEverythingAppliedExactlyOnce(harness, workers: 2)
        // The kills did land mid-batch: leases ran out and those callbacks were claimed again.
        let reclaimed = try connection.query("SELECT count(*) FROM callback_jobs WHERE attempts > 1")[0]
            .decode(0, as: Int.self)
        #expect(reclaimed > 0)
    }
}

/// The database goes away under running workers and comes back: they reconnect by
/// themselves, and what was in flight is neither lost nor applied twice.
@Suite(.timeLimit(.minutes(6))) struct WorkerDatabaseOutageTests {
    @Test func workersRideOutADatabaseCrash() async throws {
        let cluster = try TestCluster.start()
        defer { cluster.remove() }
        let harness = try await PipelineHarness(database: try TestDatabase.create(adminURL: cluster.url()))
        defer { Task { await harness.tearDown() } }
        let processes = WorkerProcessTests()
        try await processes.prepare(harness)
        let workers = try (0..<2).map { _ in try processes.startWorker(harness) }
        defer { for worker in workers { worker.signal(SIGKILL); worker.wait() } }
        // Let them get going, then crash PostgreSQL in the middle of their batches.
        try await harness.waitUntil("work has started") {
            try harness.database.connect().query("SELECT count(*) FROM callback_jobs WHERE state = 'done'")[0]
                .decode(0, as: Int.self) > 500
        }
        try cluster.crash()
        try await Task.sleep(for: .seconds(2))
        try cluster.restart()
        try await harness.waitForDrain(timeout: .seconds(240))
        try processes.expectEverythingAppliedExactlyOnce(harness, workers: 2)
        let errors = try harness.database.connect().query(
            "SELECT count(*) FROM callback_jobs WHERE attempts > 1")[0].decode(0, as: Int.self)
        #expect(errors > 0, "the crash should have interrupted some batches")
    }
}
