import Channels
import Foundation
import Orders
import PayhookCore
import Postgres
import PostgresTestSupport
import Testing

/// The order statements against a real PostgreSQL: apply under lock, the events it
/// writes, concurrent appliers, and the shared reconciliation rate limit.
@Suite struct OrderStoreTests {
    let database: TestDatabase

    init() throws { database = try TestDatabase.create() }

    func createOrder(_ number: String, amount: Int64 = 8888, createdSecondsAgo: Int = 0, on connection: Connection) throws {
        try connection.query("""
            INSERT INTO orders (out_trade_no, channel, amount_minor, currency, created_at)
            VALUES ($1, 'alipay', $2, 'CNY', now() - $3 * interval '1 second')
            """, [.text(number), .int64(amount), .int64(Int64(createdSecondsAgo))])
    }

    func paid(_ number: String, tradeNo: String = "T-1", amount: Int64 = 8888) -> ApplyItem {
        ApplyItem(source: .callback, callbackID: nil, evidence: OrderEvidence(
            channel: "alipay", outTradeNo: number, channelTradeNo: tradeNo, status: .paid, amountMinor: amount,
            currency: "CNY", paidAt: Date(timeIntervalSince1970: 1_800_000_000)))
    }

    @Test func applyMovesTheOrderOnceAndRecordsEveryItem() throws {
        let connection = try database.connect()
        try createOrder("O-1", on: connection)
        let plan = try connection.transaction { connection throws(PostgresError) in
            try OrderStore.apply([paid("O-1"), paid("O-1"), paid("O-1", amount: 1)], on: connection)
        }
        #expect(plan.decisions.count == 3)
        let order = try connection.query("SELECT status, channel_trade_no, paid_at FROM orders WHERE out_trade_no = 'O-1'")[0]
        #expect(try order.decode(0, as: String.self) == "paid")
        #expect(try order.decode(1, as: String.self) == "T-1")
        #expect(try order.decode(2, as: Date.self) == Date(timeIntervalSince1970: 1_800_000_000))
        let events = try connection.query("SELECT kind, flagged FROM order_events WHERE out_trade_no = 'O-1' ORDER BY id")
            .rows.map { row throws(PostgresError) in (try row.decode(0, as: String.self), try row.decode(1, as: Bool.self)) }
        #expect(events.map(\.0) == ["transition", "duplicate", "conflict"])
        #expect(events.map(\.1) == [false, false, true])
    }

    @Test func concurrentAppliersTransitionAnOrderExactlyOnce() async throws {
        let setup = try database.connect()
        for index in 0..<50 { try createOrder("C-\(index)", on: setup) }
        let url = database.url
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let connection = try Connection(url)
                    let items = (0..<50).shuffled().map { self.paid("C-\($0)", tradeNo: "T-\($0)") }
                    _ = try connection.transaction { connection throws(PostgresError) in
                        try OrderStore.apply(items, on: connection)
                    }
                }
            }
            try await group.waitForAll()
        }
        let transitions = try setup.query("SELECT count(*) FROM order_events WHERE kind = 'transition'")[0]
        #expect(try transitions.decode(0, as: Int.self) == 50)
        let duplicates = try setup.query("SELECT count(*) FROM order_events WHERE kind = 'duplicate'")[0]
        #expect(try duplicates.decode(0, as: Int.self) == 250)
        let paid = try setup.query("SELECT count(*) FROM orders WHERE status = 'paid'")[0]
        #expect(try paid.decode(0, as: Int.self) == 50)
    }

    @Test func reconciliationIsRateLimitedPerOrderAcrossCallers() throws {
        let connection = try database.connect()
        try createOrder("R-1", on: connection)
        try createOrder("R-2", on: connection)
        let first = try OrderStore.claimReconciliation(["R-1", "R-1", "R-2"], everySeconds: 600, on: connection)
        #expect(Set(first.map(\.outTradeNo)) == ["R-1", "R-2"])
        let second = try OrderStore.claimReconciliation(["R-1"], everySeconds: 600, on: connection)
        #expect(second.isEmpty)
        try connection.query("UPDATE orders SET status = 'paid', paid_at = now() WHERE out_trade_no = 'R-2'")
        try connection.query("UPDATE orders SET reconciled_at = now() - interval '1 hour'")
        // Only orders still created are worth a question.
        let third = try OrderStore.claimReconciliation(["R-1", "R-2"], everySeconds: 600, on: connection)
        #expect(third.map(\.outTradeNo) == ["R-1"])
    }

    @Test func theSweeperPicksOnlyStaleCreatedOrdersInItsWindow() throws {
        let connection = try database.connect()
        try createOrder("fresh", createdSecondsAgo: 10, on: connection)
        try createOrder("stale", createdSecondsAgo: 900, on: connection)
        try createOrder("ancient", createdSecondsAgo: 400_000, on: connection)
        let picked = try OrderStore.claimStaleOrders(limit: 10, afterSeconds: 600, everySeconds: 600,
                                                     maxAgeSeconds: 72 * 3600, on: connection)
        #expect(picked.map(\.outTradeNo) == ["stale"])
        let again = try OrderStore.claimStaleOrders(limit: 10, afterSeconds: 600, everySeconds: 600,
                                                    maxAgeSeconds: 72 * 3600, on: connection)
        #expect(again.isEmpty)
    }
}
