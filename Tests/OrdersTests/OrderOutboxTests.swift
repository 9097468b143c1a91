import Foundation
import Orders
import PayhookCore
import Postgres
import PostgresTestSupport
import Testing

/// The outbox against a real PostgreSQL: an event exactly for each committed transition
/// and flagged conflict, none for a duplicate or a rolled-back apply, and a NOTIFY after commit.
@Suite struct OrderOutboxTests {
    let database: TestDatabase

    init() throws { database = try TestDatabase.create() }

    func createOrder(_ number: String, channel: String = "alipay", amount: Int64 = 8888, on connection: Connection) throws {
        try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor, currency) VALUES ($1, $2, $3, 'CNY')",
                             [.text(number), .text(channel), .int64(amount)])
    }

    func evidence(_ number: String, _ status: PaymentStatus, amount: Int64 = 8888, tradeNo: String = "T-1",
                  payer: String? = "2088102177846880") -> ApplyItem {
        ApplyItem(source: .callback, callbackID: nil, evidence: OrderEvidence(
            channel: "alipay", outTradeNo: number, channelTradeNo: tradeNo, status: status, amountMinor: amount,
            currency: "CNY", paidAt: Date(timeIntervalSince1970: 1_800_000_000), payer: payer))
    }

    func apply(_ items: [ApplyItem], on connection: Connection) throws {
        _ = try connection.transaction { connection throws(PostgresError) in try OrderStore.apply(items, on: connection) }
    }

    @Test func aPaymentCommitsOneEventWithTheBodyTheSiteIsSent() throws {
        let connection = try database.connect()
        try createOrder("O-1", on: connection)
        try apply([evidence("O-1", .paid), evidence("O-1", .paid)], on: connection)
        let events = try OrderOutbox.list(outTradeNo: "O-1", on: connection)
        #expect(events.count == 1, "the duplicate makes no event")
        let event = try #require(events.first)
        #expect(event.kind == "order.paid")
        #expect(event.eventID.hasPrefix("evt_") && event.eventID.count == 36)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(event.payload.utf8)) as? [String: Any])
        #expect(body["type"] as? String == "order.paid")
        #expect((body["timestamp"] as? String)?.hasSuffix("Z") == true)
        let data = try #require(body["data"] as? [String: Any])
        #expect(data["event_id"] as? String == event.eventID)
        #expect(data["out_trade_no"] as? String == "O-1")
        #expect(data["channel_trade_no"] as? String == "T-1")
        #expect(data["amount"] as? String == "88.88", "a decimal string")
        #expect(data["amount_minor"] as? Int == 8888)
        #expect(data["currency"] as? String == "CNY")
        #expect(data["payer"] as? String == "2088102177846880", "the payer is kept on the order")
        #expect(data["status"] as? String == "paid")
        #expect(data["paid_at"] as? String == "2027-01-15T08:00:00.000000Z")
        let payer = try connection.query("SELECT payer FROM orders WHERE out_trade_no = 'O-1'")[0]
        #expect(try payer.decode(0, as: String.self) == "2088102177846880")
    }

    @Test func closesAndFlaggedConflictsHaveEventsAndSmallAmountsKeepTheirZeros() throws {
        let connection = try database.connect()
        try createOrder("O-C", amount: 5, on: connection)
        try createOrder("O-X", on: connection)
        try apply([evidence("O-C", .closed, amount: 5), evidence("O-X", .paid, amount: 1)], on: connection)
        let closed = try #require(try OrderOutbox.list(outTradeNo: "O-C", on: connection).first)
        #expect(closed.kind == "order.closed")
        #expect(closed.payload.contains(#""amount" : "0.05""#) || closed.payload.contains(#""amount": "0.05""#)
                || closed.payload.contains(#""amount":"0.05""#), "\(closed.payload)")
        let conflict = try #require(try OrderOutbox.list(outTradeNo: "O-X", on: connection).first)
        #expect(conflict.kind == "order.conflict")
        let data = try #require((try JSONSerialization.jsonObject(with: Data(conflict.payload.utf8)) as? [String: Any])?["data"]
            as? [String: Any])
        #expect(data["reason"] as? String == "amount_mismatch")
        #expect(data["status"] as? String == "created", "the order did not move")
        #expect(data["reported_status"] as? String == "paid")
    }

    @Test func aRolledBackApplyLeavesNoEventAndNoNotification() throws {
        let connection = try database.connect()
        let listener = try database.connect()
        try listener.listen(OrderOutbox.notifyChannel)
        try createOrder("O-R", on: connection)
        do {
            try connection.transaction { connection throws(PostgresError) in
                _ = try OrderStore.apply([evidence("O-R", .paid)], on: connection)
                throw PostgresError(code: .client, context: "roll back")
            }
        } catch {}
        #expect(try OrderOutbox.list(outTradeNo: "O-R", on: connection).isEmpty)
        #expect(try listener.waitForNotifications(timeout: .milliseconds(300)).isEmpty)

        try apply([evidence("O-R", .paid)], on: connection)
        let event = try #require(try OrderOutbox.list(outTradeNo: "O-R", on: connection).first)
        let notified = try listener.waitForNotifications(timeout: .seconds(5))
        #expect(notified.map(\.payload) == [event.eventID], "after commit, the event id")
    }
}
