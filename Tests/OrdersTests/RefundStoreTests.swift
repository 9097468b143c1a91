import Foundation
import Orders
import PayhookCore
import Postgres
import PostgresTestSupport
import Testing

/// Refunds against a real PostgreSQL: `refunded_minor`, the `refunded` status, one
/// `order_refunds` row per refund number, an `order.refunded` event per refund that moved money.
@Suite struct RefundStoreTests {
    let database: TestDatabase

    init() throws { database = try TestDatabase.create() }

    func paidOrder(_ number: String, amount: Int64 = 8888, on connection: Connection) throws {
        try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor, currency) VALUES ($1, 'wechatpay', $2, 'CNY')",
                             [.text(number), .int64(amount)])
        _ = try connection.transaction { connection throws(PostgresError) in
            try OrderStore.apply([ApplyItem(source: .callback, callbackID: nil, evidence: OrderEvidence(
                channel: "wechatpay", outTradeNo: number, channelTradeNo: "T-\(number)", status: .paid, amountMinor: amount,
                currency: "CNY", paidAt: Date(timeIntervalSince1970: 1_800_000_000)))], on: connection)
        }
    }

    func refund(_ number: String, _ refundNo: String, _ amount: Int64, status: RefundStatus = .succeeded,
                on connection: Connection) throws -> RefundDecision? {
        try connection.transaction { connection throws(PostgresError) in
            try OrderStore.apply([], refunds: [RefundItem(source: .callback, callbackID: nil, evidence: RefundEvidence(
                channel: "wechatpay", outTradeNo: number, channelTradeNo: "T-\(number)", refundNo: refundNo,
                channelRefundID: "50\(refundNo)", status: status, amountMinor: amount, currency: "CNY",
                refundedAt: Date(timeIntervalSince1970: 1_800_000_100)))], on: connection).refundDecisions[0]
        }
    }

    func order(_ number: String, _ connection: Connection) throws -> (String, Int64) {
        let row = try connection.query("SELECT status, refunded_minor FROM orders WHERE out_trade_no = $1", [.text(number)])[0]
        return (try row.decode(0), try row.decode(1))
    }

    @Test func partialThenFullRefundIsRecordedOnceEachWithItsEvent() throws {
        let connection = try database.connect()
        try paidOrder("O-1", on: connection)
        #expect(try refund("O-1", "RF-1", 1000, on: connection) == .refund(from: .paid, to: .paid, amountMinor: 1000))
        #expect(try order("O-1", connection) == ("paid", 1000))
        #expect(try refund("O-1", "RF-1", 1000, on: connection) == .duplicate(.paid))
        #expect(try refund("O-1", "RF-2", 7888, on: connection) == .refund(from: .paid, to: .refunded, amountMinor: 7888))
        #expect(try order("O-1", connection) == ("refunded", 8888))
        #expect(try refund("O-1", "RF-2", 7888, on: connection) == .duplicate(.refunded))
        guard case .conflict(.refundExceedsPaid, _)? = try refund("O-1", "RF-3", 1, on: connection) else {
            Issue.record("a refund past the paid amount must be a conflict")
            return
        }
        #expect(try order("O-1", connection) == ("refunded", 8888), "the conflict changed nothing")

        let rows = try RefundStore.records(["O-1"], on: connection)
        #expect(rows.map(\.refundNo) == ["RF-1", "RF-2"])
        #expect(rows.map(\.amountMinor) == [1000, 7888])
        #expect(rows.allSatisfy { $0.status == .succeeded && $0.channelRefundID != nil })

        let kinds = try connection.query("""
            SELECT kind || coalesce('/' || out_refund_no, '') || CASE WHEN flagged THEN '/flagged' ELSE '' END
            FROM order_events WHERE out_trade_no = 'O-1' ORDER BY id
            """).rows.map { row throws(PostgresError) in try row.decode(0, as: String.self) }
        #expect(kinds == ["transition", "refund/RF-1", "duplicate/RF-1", "refund/RF-2", "duplicate/RF-2", "conflict/RF-3/flagged"])

        let events = try OrderOutbox.list(outTradeNo: "O-1", on: connection).reversed()
        #expect(events.map(\.kind) == ["order.paid", "order.refunded", "order.refunded", "order.conflict"])
        let last = try #require(events.dropFirst(2).first)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(last.payload.utf8)) as? [String: Any])
        let data = try #require(body["data"] as? [String: Any])
        #expect(data["status"] as? String == "refunded")
        #expect(data["refunded_amount"] as? String == "88.88")
        let refund = try #require(data["refund"] as? [String: Any])
        #expect(refund["out_refund_no"] as? String == "RF-2")
        #expect(refund["amount"] as? String == "78.88")
        #expect(refund["amount_minor"] as? Int == 7888)
        #expect(refund["channel_refund_id"] as? String == "50RF-2")
    }

    @Test func anAbnormalRefundIsRecordedWithoutMovingMoneyOrAnEvent() throws {
        let connection = try database.connect()
        try paidOrder("O-2", on: connection)
        #expect(try refund("O-2", "RF-A", 500, status: .abnormal, on: connection) == .state(.abnormal))
        #expect(try order("O-2", connection) == ("paid", 0))
        #expect(try RefundStore.records(["O-2"], on: connection).map(\.status) == [.abnormal])
        #expect(try OrderOutbox.list(outTradeNo: "O-2", on: connection).map(\.kind) == ["order.paid"])
    }

    @Test func theSiteAPIsBeginIsIdempotentAndCountsRefundsInFlight() throws {
        let connection = try database.connect()
        try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor, currency) VALUES ('O-U', 'wechatpay', 100, 'CNY')")
        #expect(try RefundStore.begin(outTradeNo: "O-U", refundNo: "RF-1", amountMinor: 10, reason: nil, digest: [1],
                                      on: connection) == .notRefundable(.created))
        #expect(try RefundStore.begin(outTradeNo: "NO-SUCH", refundNo: "RF-1", amountMinor: 10, reason: nil, digest: [1],
                                      on: connection) == .orderNotFound)
        try paidOrder("O-3", amount: 1000, on: connection)
        guard case .begun(let first) = try RefundStore.begin(outTradeNo: "O-3", refundNo: "RF-1", amountMinor: 600, reason: "size",
                                                             digest: [1], on: connection) else {
            Issue.record("the first request begins the refund")
            return
        }
        #expect(first.status == .processing)
        #expect(try RefundStore.begin(outTradeNo: "O-3", refundNo: "RF-1", amountMinor: 600, reason: "size", digest: [1],
                                      on: connection) == .repeated(first))
        #expect(try RefundStore.begin(outTradeNo: "O-3", refundNo: "RF-1", amountMinor: 601, reason: "size", digest: [2],
                                      on: connection) == .conflict)
        // 600 is in flight: 400 is left.
        #expect(try RefundStore.begin(outTradeNo: "O-3", refundNo: "RF-2", amountMinor: 401, reason: nil, digest: [3],
                                      on: connection) == .exceedsPaid(remainingMinor: 400))
        try RefundStore.fail(outTradeNo: "O-3", refundNo: "RF-1", detail: "test", on: connection)
        #expect(try RefundStore.record(outTradeNo: "O-3", refundNo: "RF-1", on: connection)?.status == .failed)
        guard case .begun = try RefundStore.begin(outTradeNo: "O-3", refundNo: "RF-2", amountMinor: 1000, reason: nil,
                                                  digest: [3], on: connection) else {
            Issue.record("a failed refund no longer counts")
            return
        }
        #expect(try order("O-3", connection) == ("paid", 0), "nothing is refunded before the channel says so")
    }
}
