import Foundation
import PayhookCore
import Postgres
import PostgresTestSupport
import Simulator
import Testing

/// The load generator's verdict against a real, migrated PostgreSQL, with the callbacks and
/// orders written as the receiver and workers would leave them.
@Suite struct LoadCheckTests {
    func store(_ plan: LoadPlan, sequence: Int, state: String, reason: String?, on connection: Connection) throws {
        let send = plan.sends[sequence]
        try connection.query(
            """
            WITH p AS (
                INSERT INTO callback_payloads
                    (channel, kind, received_at, method, path, query, header_names, header_values, body)
                VALUES ($1, 'notify', now(), 'POST', $2, $3, '{}', '{}', $4) RETURNING id, received_at)
            INSERT INTO callback_jobs (callback_id, received_at, channel, state, reason, out_trade_no)
            SELECT id, received_at, $1, $5, $6, $7 FROM p
            """,
            [.text(send.notify.channel), .text("/notify/\(send.notify.channel)"), .text(plan.marker(sequence)),
             .bytea(send.notify.body), .text(state), .text(reason), .text(plan.orders[send.orderIndex].outTradeNo)])
    }

    @Test func reportsEachKindOfMismatch() async throws {
        let database = try TestDatabase.create()
        defer { database.drop() }
        let connection = try database.connect()
        let factory = NotifyFactory(channels: sharedChannels, oversizeBytes: 4096)
        let plan = await LoadPlan.make(factory: factory, mix: LoadMix(weights: [.valid: 4, .forged: 2, .oversize: 2]), count: 8)
        try LoadCheck.insertOrders(plan, on: connection)
        let created = try connection.query("SELECT count(*) FROM orders WHERE status = 'created' AND out_trade_no LIKE $1",
                                           [.text(plan.orderNumberPattern)])
        #expect(try created[0].decode(0, as: Int64.self) == 8)

        let statuses: [Int?] = plan.sends.map { plan.orders[$0.orderIndex].kind == .oversize ? 413 : 200 }
        let valid = plan.sends.filter { plan.orders[$0.orderIndex].kind == .valid }.map(\.sequence)
        let forged = plan.sends.filter { plan.orders[$0.orderIndex].kind == .forged }.map(\.sequence)
        // All valid callbacks stored and done but the last (acknowledged, then lost); forged ones rejected.
        for sequence in valid.dropLast() { try store(plan, sequence: sequence, state: "done", reason: nil, on: connection) }
        try store(plan, sequence: forged[0], state: "rejected", reason: "bad_signature", on: connection)
        try store(plan, sequence: forged[1], state: "pending", reason: nil, on: connection)
        #expect(try LoadCheck.unfinishedCallbacks(plan, on: connection) == 1)
        // Every valid order paid but one; one forged order paid.
        let validOrders = valid.map { plan.orders[plan.sends[$0].orderIndex].outTradeNo }
        let forgedOrder = plan.orders[plan.sends[forged[0]].orderIndex].outTradeNo
        try connection.query("UPDATE orders SET status = 'paid', paid_at = now() WHERE out_trade_no = ANY($1::text[])",
                             [.textArray(Array(validOrders.dropFirst()) + [forgedOrder])])

        let drained = try await LoadCheck.waitForDrain(plan, on: connection, timeout: .milliseconds(600))
        #expect(!drained)
        let report = try LoadCheck.check(plan, statuses: statuses, on: connection)
        #expect(report.mismatchCounts == [
            LoadCheck.validNotPaid: 1, LoadCheck.paidButShouldNotBe: 1,
            LoadCheck.acknowledgedButMissing: 1, LoadCheck.unfinished: 1,
        ])
        #expect(report.callbackOutcomes == ["done": 3, "rejected/bad_signature": 1, "pending": 1])
        // Sent before the oldest partition kept, the missing callback went with a partition
        // retention dropped; sent since, it is lost.
        var sentAt = [Date?](repeating: Date(), count: plan.sends.count)
        sentAt[valid.last!] = Date(timeIntervalSinceNow: -3 * 86_400)
        let retained = try LoadCheck.check(plan, statuses: statuses, sentAt: sentAt, on: connection)
        #expect(retained.droppedByRetention == 1)
        #expect(retained.mismatchCounts[LoadCheck.acknowledgedButMissing] == nil)
        #expect(retained.mismatchCounts[LoadCheck.validNotPaid] == 1, "its order is still checked")
        sentAt[valid.last!] = Date()
        #expect(try LoadCheck.check(plan, statuses: statuses, sentAt: sentAt, on: connection)
                .mismatchCounts[LoadCheck.acknowledgedButMissing] == 1)
        #expect(report.orderStatuses[.valid] == ["paid": 3, "created": 1])
        #expect(report.orderStatuses[.oversize] == ["created": 2])

        // Once the workers' outcome matches, the report is clean.
        try store(plan, sequence: valid.last!, state: "done", reason: nil, on: connection)
        try connection.query("UPDATE callback_jobs SET state = 'rejected', reason = 'bad_signature' WHERE state = 'pending'")
        try connection.query("UPDATE orders SET status = 'paid', paid_at = now() WHERE out_trade_no = $1", [.text(validOrders[0])])
        try connection.query("UPDATE orders SET status = 'created', paid_at = NULL WHERE out_trade_no = $1", [.text(forgedOrder)])
        #expect(try await LoadCheck.waitForDrain(plan, on: connection, timeout: .seconds(1)))
        #expect(try LoadCheck.check(plan, statuses: statuses, on: connection).mismatches.isEmpty)
        // An oversize notify that was stored is a mismatch.
        var stored = statuses
        let oversize = plan.sends.first { plan.orders[$0.orderIndex].kind == .oversize }!.sequence
        stored[oversize] = 200
        #expect(try LoadCheck.check(plan, statuses: stored, on: connection).mismatchCounts == [LoadCheck.unexpectedStatus: 1])
    }
}
