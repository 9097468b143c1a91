import Foundation
import PayhookCore
import Postgres
import PostgresTestSupport
import Simulator
import Testing

/// Refund notifies end to end: through `POST /notify/...`, verified, cross-checked with the
/// simulated channel's refund query, recorded once each; never read as a payment.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RefundTests {
    func count(_ harness: PipelineHarness, _ sql: String, _ number: String) throws -> Int {
        try harness.database.connect().query(sql, [.text(number)])[0].decode(0, as: Int.self)
    }

    func refunded(_ harness: PipelineHarness, _ number: String) throws -> (String, Int64) {
        let row = try harness.database.connect().query(
            "SELECT status, refunded_minor FROM orders WHERE out_trade_no = $1", [.text(number)])[0]
        return (try row.decode(0), try row.decode(1))
    }

    @Test(arguments: ["alipay", "wechatpay"])
    func partialThenFullRefundWithDuplicates(channel: String) async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let number = "RF-\(channel)-1"
        let order = try harness.order(number, channel: channel)
        let simulator = harness.simulator
        let notifies = harness.notifies
        try await harness.withPipeline { sender in
            #expect(try await sender.send(notifies.notify(.valid, channel: channel, order: order, eventID: "PAY-1")) < 300)
            try await harness.waitForDrain()
            #expect(try harness.orderStatus(number) == "paid")

            let (afterFirst, first) = try simulator.refund(channel: channel, outTradeNo: number, refundNo: "R-1", amountMinor: 1000)
            let firstNotify = notifies.refundNotify(channel: channel, order: afterFirst, refund: first, eventID: "REF-1")
            for _ in 0..<2 { #expect(try await sender.send(firstNotify) < 300) }
            try await harness.waitForDrain()
            #expect(try self.refunded(harness, number) == ("paid", 1000), "a partial refund keeps the order paid")

            let (afterSecond, second) = try simulator.refund(channel: channel, outTradeNo: number, refundNo: "R-2", amountMinor: 7888)
            let secondNotify = notifies.refundNotify(channel: channel, order: afterSecond, refund: second, eventID: "REF-2")
            for _ in 0..<2 { #expect(try await sender.send(secondNotify) < 300) }
            #expect(try await sender.send(firstNotify) < 300, "a late repeat of the first")
            try await harness.waitForDrain()
        }
        #expect(try refunded(harness, number) == ("refunded", 8888))
        #expect(try harness.callbackStates(number) == Array(repeating: "done", count: 6))
        #expect(try count(harness, "SELECT count(*) FROM order_refunds WHERE out_trade_no = $1 AND status = 'succeeded'", number) == 2)
        let events = try harness.events(number)
        #expect(events.first == "transition/callback")
        #expect(events.filter { $0 == "refund/callback" }.count == 2, "each refund once")
        #expect(events.filter { $0 == "duplicate/callback" }.count == 3, "each repeat a duplicate")
        #expect(events.count == 6)
        #expect(try count(harness, "SELECT count(*) FROM order_outbox WHERE out_trade_no = $1 AND kind = 'order.refunded'", number) == 2)
        #expect(try count(harness, "SELECT count(*) FROM order_outbox WHERE out_trade_no = $1 AND kind = 'order.paid'", number) == 1)
        // The refund query was asked: the cross-check is not skipped.
        #expect(try count(harness, "SELECT count(*) FROM order_events WHERE out_trade_no = $1 AND flagged", number) == 0)
    }

    @Test(arguments: ["alipay", "wechatpay"])
    func aForgedRefundNotifyIsRejectedAndTheOrderUnchanged(channel: String) async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let number = "RF-\(channel)-F"
        let order = try harness.order(number, channel: channel)
        let notifies = harness.notifies
        let simulator = harness.simulator
        try await harness.withPipeline { sender in
            #expect(try await sender.send(notifies.notify(.valid, channel: channel, order: order, eventID: "PAY-F")) < 300)
            try await harness.waitForDrain()
            let (after, refund) = try simulator.refund(channel: channel, outTradeNo: number, refundNo: "R-F", amountMinor: 8888)
            #expect(try await sender.send(notifies.refundNotify(channel: channel, order: after, refund: refund, eventID: "REF-F",
                                                                forged: true)) < 300)
            try await harness.waitForDrain()
        }
        #expect(try refunded(harness, number) == ("paid", 0))
        #expect(try harness.callbackStates(number) == ["done", "rejected/bad_signature"])
        #expect(try count(harness, "SELECT count(*) FROM order_refunds WHERE out_trade_no = $1", number) == 0)
        #expect(try count(harness, "SELECT count(*) FROM order_outbox WHERE out_trade_no = $1 AND kind = 'order.refunded'", number) == 0)
    }

    @Test(arguments: ["alipay", "wechatpay"])
    func aRefundNotifyForAnUnpaidOrderNeverPaysIt(channel: String) async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let number = "RF-\(channel)-U"
        // The channel's book says paid and refunded; the site never saw the payment.
        try harness.order(number, channel: channel)
        let (after, refund) = try harness.simulator.refund(channel: channel, outTradeNo: number, refundNo: "R-U", amountMinor: 100)
        let notify = harness.notifies.refundNotify(channel: channel, order: after, refund: refund, eventID: "REF-U")
        try await harness.withPipeline { sender in
            #expect(try await sender.send(notify) < 300)
            try await harness.waitUntil("the refund notify dies after its retries") {
                try harness.callbackStates(number) == ["dead/refund_for_unpaid_order"]
            }
        }
        #expect(try refunded(harness, number) == ("created", 0))
        #expect(try count(harness, "SELECT count(*) FROM orders WHERE out_trade_no = $1 AND paid_at IS NULL", number) == 1)
        #expect(try count(harness, "SELECT count(*) FROM order_refunds WHERE out_trade_no = $1", number) == 0)
    }

    @Test func aRefundLargerThanWhatWasPaidIsAFlaggedConflict() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let number = "RF-X-1"
        // The site's order is for 50.00 and paid; the channel refunds 60.00 of its 88.88.
        try harness.order(number, channel: "wechatpay", amountMinor: 8888, siteAmountMinor: 5000)
        try harness.database.connect().query(
            "UPDATE orders SET status = 'paid', paid_at = now(), channel_trade_no = $2 WHERE out_trade_no = $1",
            [.text(number), .text("CT-\(number)")])
        let (after, refund) = try harness.simulator.refund(channel: "wechatpay", outTradeNo: number, refundNo: "R-X", amountMinor: 6000)
        let notify = harness.notifies.refundNotify(channel: "wechatpay", order: after, refund: refund, eventID: "REF-X")
        try await harness.withPipeline { sender in
            #expect(try await sender.send(notify) < 300)
            try await harness.waitForDrain()
        }
        #expect(try refunded(harness, number) == ("paid", 0))
        #expect(try harness.callbackStates(number) == ["rejected/refund_exceeds_paid"])
        #expect(try harness.events(number) == ["conflict/flagged/callback"])
        #expect(try count(harness, "SELECT count(*) FROM order_outbox WHERE out_trade_no = $1 AND kind = 'order.conflict'", number) == 1)
    }
}
