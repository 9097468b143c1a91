import Foundation
import PayhookConfig
import PayhookCore
import Postgres
import Prometheus
import PostgresTestSupport
import Simulator
import Testing
import Workers

/// `cross_check: when_unverified` end to end: notifies through `POST /notify/...`, workers
/// in this process, the simulated channels counting every query, one real PostgreSQL.
@Suite(.serialized, .timeLimit(.minutes(3))) struct CrossCheckTests {
    @Test func aVerifiedNotifyPaysWithoutAQueryOnceAndAForgeryIsStillRejected() async throws {
        let harness = try await PipelineHarness(crossCheck: "when_unverified")
        defer { Task { await harness.tearDown() } }
        #expect(harness.configuration.worker.crossCheck["alipay"] == .whenUnverified)
        let registry = PrometheusCollectorRegistry()
        let metrics = WorkerMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let paid = try [("A-1", "alipay"), ("W-1", "wechatpay"), ("P-1", "points")].map { number, channel in
            let order = try harness.order(number, channel: channel)
            return (number, channel, harness.notifies.notify(.valid, channel: channel, order: order, eventID: "E-\(number)"))
        }
        // The channel was never paid for F-1: a forger claims it was.
        var claim = try harness.order("F-1", channel: "alipay", channelStatus: .pending)
        claim.status = .paid
        let forged = claim
        // A genuine close is not a payment: still asked.
        let closed = try harness.order("X-1", channel: "wechatpay", channelStatus: .closed)
        // A genuine notify for another amount than the site's order: flagged, never applied.
        let amount = try harness.order("C-AMT", channel: "points", amountMinor: 8888, siteAmountMinor: 100)

        try await harness.withPipeline(metrics: metrics) { sender in
            for _ in 0..<3 {
                for (_, _, notify) in paid { #expect(try await sender.send(notify) < 300) }
            }
            #expect(try await sender.send(harness.notifies.notify(.forged, channel: "alipay", order: forged, eventID: "f")) == 200)
            #expect(try await sender.send(harness.notifies.notify(.valid, channel: "wechatpay", order: closed, eventID: "x")) < 300)
            #expect(try await sender.send(harness.notifies.notify(.valid, channel: "points", order: amount, eventID: "c")) < 300)
            try await harness.waitForDrain()
        }

        for (number, channel, _) in paid {
            #expect(try harness.orderStatus(number) == "paid")
            #expect(try harness.callbackStates(number) == ["done", "done", "done"])
            // Exactly once: one transition, the repeats are duplicates.
            #expect(try harness.events(number) == ["transition/callback", "duplicate/callback", "duplicate/callback"])
            #expect(try harness.eventDetails(number).first == NotifyTrust.eventNote, "the operator can tell it was not asked")
            #expect(harness.simulator.queryCount(channel: channel, outTradeNo: number) == 0)
        }
        // The evidence of payment is the signed notify's own: trade number and paid time.
        let row = try harness.database.connect().query(
            "SELECT channel_trade_no, extract(epoch FROM paid_at)::bigint FROM orders WHERE out_trade_no = 'W-1'")[0]
        #expect(try row.decode(0, as: String.self) == "CT-W-1")
        #expect(try row.decode(1, as: Int64.self) == 1_800_000_000)

        #expect(try harness.callbackStates("F-1") == ["rejected/bad_signature"])
        #expect(try harness.orderStatus("F-1") == "created")
        #expect(try harness.events("F-1") == [])
        // The reconciliation after a failed signature still asks, and the channel says "not paid".
        #expect(harness.simulator.queryCount(channel: "alipay", outTradeNo: "F-1") == 1)

        #expect(try harness.orderStatus("X-1") == "closed")
        #expect(try harness.eventDetails("X-1") == [""], "confirmed by the query, not applied alone")
        #expect(harness.simulator.queryCount(channel: "wechatpay", outTradeNo: "X-1") == 1)

        #expect(try harness.callbackStates("C-AMT") == ["rejected/amount_mismatch"])
        #expect(try harness.orderStatus("C-AMT") == "created")
        #expect(try harness.events("C-AMT") == ["conflict/flagged/callback"])

        // Every query the channels saw, in all: F-1's and X-1's, no other.
        #expect(harness.simulator.queryCount(channel: "alipay") == 1)
        #expect(harness.simulator.queryCount(channel: "wechatpay") == 1)
        #expect(harness.simulator.queryCount(channel: "points") == 0)
        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        #expect(text.contains(#"payhook_worker_unqueried_total{channel="points"} 1"#))
    }
}
