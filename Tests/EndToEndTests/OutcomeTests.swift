import CallbackQueue
import Channels
import Foundation
import PayhookCore
import PayhookConfig
import Postgres
import Prometheus
import PostgresTestSupport
import Simulator
import Testing
import Workers

/// Every outcome end to end: notifies through `POST /notify/...`, workers in this process,
/// the simulated channels answering queries on loopback, one real PostgreSQL.
@Suite(.serialized, .timeLimit(.minutes(3))) struct OutcomeTests {
    @Test func genuineNotifiesPayOnceAndRepeatsAreDuplicates() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let sent = try [("A-1", "alipay"), ("W-1", "wechatpay"), ("P-1", "points")].map { number, channel in
            let order = try harness.order(number, channel: channel)
            return (number, harness.notifies.notify(.valid, channel: channel, order: order, eventID: "E-\(number)"))
        }
        try await harness.withPipeline { sender in
            for _ in 0..<4 {
                for (_, notify) in sent { #expect(try await sender.send(notify) < 300) }
            }
            try await harness.waitForDrain()
        }
        for (number, _) in sent {
            #expect(try harness.orderStatus(number) == "paid")
            #expect(try harness.callbackStates(number) == Array(repeating: "done", count: 4))
            let events = try harness.events(number)
            #expect(events.first == "transition/callback")
            #expect(events.filter { $0 == "transition/callback" }.count == 1)
            #expect(events.count == 4)
        }
        let paid = try harness.database.connect().query(
            "SELECT channel_trade_no FROM orders WHERE out_trade_no = 'A-1'")[0].decode(0, as: String.self)
        #expect(paid == "CT-A-1")
    }

    @Test func rejectionsKeepTheirReasonAndMoveNoOrder() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let notifies = harness.notifies
        // The channel has not been paid for any of these: nothing may pay them.
        let forged = try harness.order("F-1", channel: "alipay", channelStatus: .pending)
        let tampered = try harness.order("T-1", channel: "points", channelStatus: .pending)
        let stale = try harness.order("S-1", channel: "wechatpay", channelStatus: .pending)
        let probe = try harness.order("Q-1", channel: "wechatpay", channelStatus: .pending)
        let wrongIP = try harness.order("I-1", channel: "alipay", channelStatus: .pending)
        let merchant = try harness.order("M-1", channel: "alipay")
        let oversize = try harness.order("O-1", channel: "points")
        // In the channel's book, not in the site's orders.
        let unknown = ChannelOrder(outTradeNo: "U-1", channelTradeNo: "CT-U-1", status: .paid, amountMinor: 100)
        harness.simulator.setOrder(channel: "points", unknown)
        let otherMerchant = AlipayChannelSide(alipayPrivateKey: harness.channels.alipayKey, appPublicKey: nil,
                                              appID: "2021000000009999", sellerID: harness.channels.alipaySellerID)

        try await harness.withPipeline { sender in
            #expect(try await sender.send(notifies.notify(.forged, channel: "alipay", order: forged, eventID: "e1")) == 200)
            #expect(try await sender.send(notifies.notify(.tampered, channel: "points", order: tampered, eventID: "e2")) == 200)
            #expect(try await sender.send(notifies.notify(.stale, channel: "wechatpay", order: stale, eventID: "e3")) < 300)
            #expect(try await sender.send(notifies.notify(.probe, channel: "wechatpay", order: probe, eventID: "e4")) < 300)
            #expect(try await sender.send(notifies.notify(.valid, channel: "alipay", order: wrongIP, eventID: "e5"),
                                          clientIP: "198.51.100.7") == 200)
            #expect(try await sender.send(SimulatedNotify(
                channel: "alipay", headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded")],
                body: otherMerchant.notifyBody(for: merchant, notifyID: "e6", notifyTime: Date()))) == 200)
            #expect(try await sender.send(notifies.notify(.oversize, channel: "points", order: oversize, eventID: "e7")) == 413)
            #expect(try await sender.send(notifies.notify(.valid, channel: "points", order: unknown, eventID: "e8")) == 200)
            #expect(try await sender.sendRaw(channel: "points", body: "{not json") == 200)
            // A forger's 60 KB "order number" is not stored for lookups and jams nothing.
            let huge = (0..<1500).map { _ in UUID().uuidString }.joined()  // incompressible
            #expect(try await sender.sendRaw(channel: "points", body: #"{"out_trade_no":"\#(huge)"}"#) == 200)
            try await harness.waitForDrain()
        }
        #expect(try harness.callbackStates("F-1") == ["rejected/bad_signature"])
        #expect(try harness.callbackStates("T-1") == ["rejected/bad_signature"])
        #expect(try harness.callbackStates("S-1") == ["rejected/stale_timestamp"])
        #expect(try harness.callbackStates("Q-1") == ["rejected/probe_signature"])
        #expect(try harness.callbackStates("I-1") == ["rejected/ip_not_allowed"])
        #expect(try harness.callbackStates("M-1") == ["rejected/merchant_mismatch"])
        #expect(try harness.callbackStates("O-1") == [])  // 413: never stored
        #expect(try harness.callbackStates("U-1") == ["dead/unknown_order"])
        #expect(try harness.allCallbackStates().filter { $0 == "rejected/malformed" }.count == 2)
        for number in ["F-1", "T-1", "S-1", "Q-1", "I-1", "M-1", "O-1"] {
            #expect(try harness.orderStatus(number) == "created", "\(number) must not move")
        }
        #expect(try harness.events("M-1") == ["conflict/flagged/callback"])
        // A failed signature still asks the channel, once: it said "not paid".
        #expect(harness.simulator.queryCount(channel: "alipay", outTradeNo: "F-1") == 1)
        #expect(harness.simulator.queryCount(channel: "points", outTradeNo: "T-1") == 1)
        // Every attempt is logged; the unknown order had its two attempts.
        let attempts = try harness.database.connect().query("""
            SELECT count(*) FROM callback_attempts a JOIN callback_jobs j ON j.callback_id = a.callback_id
            WHERE j.out_trade_no = 'U-1'
            """)[0].decode(0, as: Int.self)
        #expect(attempts == 2)
    }

    @Test func aForgedNotifyForAPaidOrderPaysItOnlyThroughTheChannelsAnswer() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let order = try harness.order("R-1", channel: "wechatpay", amountMinor: 1234)
        try await harness.withPipeline { sender in
            var forged = order
            forged.amountMinor = 1  // the forger's claim is never read
            try await sender.send(harness.notifies.notify(.forged, channel: "wechatpay", order: forged, eventID: "x"))
            try await sender.send(harness.notifies.notify(.forged, channel: "wechatpay", order: forged, eventID: "y"))
            try await harness.waitForDrain()
        }
        #expect(try harness.callbackStates("R-1") == ["rejected/bad_signature", "rejected/bad_signature"])
        #expect(try harness.orderStatus("R-1") == "paid")
        #expect(try harness.events("R-1") == ["transition/reconcile"])
        // Rate-limited: the second forgery did not ask again.
        #expect(harness.simulator.queryCount(channel: "wechatpay", outTradeNo: "R-1") == 1)
    }

    @Test func conflictsAreFlaggedAndNeverApplied() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let amount = try harness.order("C-AMT", channel: "alipay", amountMinor: 8888, siteAmountMinor: 100)
        let query = try harness.order("C-QRY", channel: "points")
        harness.simulator.script(channel: "points", outTradeNo: "C-QRY", [.amount(1)])
        let regression = try harness.order("C-REG", channel: "wechatpay")
        try await harness.withPipeline { sender in
            try await sender.send(harness.notifies.notify(.valid, channel: "alipay", order: amount, eventID: "a"))
            try await sender.send(harness.notifies.notify(.valid, channel: "points", order: query, eventID: "q"))
            try await sender.send(harness.notifies.notify(.valid, channel: "wechatpay", order: regression, eventID: "r1"))
            try await harness.waitForDrain()
            // Later the channel reports the paid order closed, and says so when asked.
            var closed = regression
            closed.status = .closed
            harness.simulator.setOrder(channel: "wechatpay", closed)
            try await sender.send(harness.notifies.notify(.valid, channel: "wechatpay", order: closed, eventID: "r2"))
            try await harness.waitForDrain()
        }
        #expect(try harness.callbackStates("C-AMT") == ["rejected/amount_mismatch"])
        #expect(try harness.orderStatus("C-AMT") == "created")
        #expect(try harness.events("C-AMT") == ["conflict/flagged/callback"])
        #expect(harness.simulator.queryCount(channel: "alipay", outTradeNo: "C-AMT") == 0)  // decided before asking

        #expect(try harness.callbackStates("C-QRY") == ["rejected/query_mismatch"])
        #expect(try harness.orderStatus("C-QRY") == "created")
        #expect(try harness.events("C-QRY") == ["conflict/flagged/callback"])

        #expect(try harness.callbackStates("C-REG") == ["done", "rejected/status_regression"])
        #expect(try harness.orderStatus("C-REG") == "paid")
        #expect(try harness.events("C-REG") == ["transition/callback", "conflict/flagged/callback"])
        let flagged = try harness.database.connect().query("SELECT count(*) FROM order_events WHERE flagged")[0]
        #expect(try flagged.decode(0, as: Int.self) == 3)
    }

    @Test func aQueryAPIFailingTwiceIsRetriedUntilItAnswers() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let order = try harness.order("Y-1", channel: "alipay")
        harness.simulator.script(channel: "alipay", outTradeNo: "Y-1", [.httpError(500), .httpError(500)])
        try await harness.withPipeline { sender in
            try await sender.send(harness.notifies.notify(.valid, channel: "alipay", order: order, eventID: "y"))
            try await harness.waitForDrain()
        }
        #expect(try harness.orderStatus("Y-1") == "paid")
        #expect(try harness.callbackStates("Y-1") == ["done"])
        let outcomes = try harness.database.connect().query(
            "SELECT outcome FROM callback_attempts ORDER BY id").rows.map { row throws(PostgresError) in
            try row.decode(0, as: String.self)
        }
        #expect(outcomes == ["retry", "retry", "done"])
        #expect(harness.simulator.queryCount(channel: "alipay", outTradeNo: "Y-1") == 3)
    }

    @Test func aQueryAPIDownPastTheBudgetIsDeadAndAReplayPays() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let order = try harness.order("D-1", channel: "points")
        harness.simulator.script(channel: "points", outTradeNo: "D-1", Array(repeating: .httpError(503), count: 4))
        try await harness.withPipeline { sender in
            try await sender.send(harness.notifies.notify(.valid, channel: "points", order: order, eventID: "d"))
            try await harness.waitForDrain()
            #expect(try harness.callbackStates("D-1") == ["dead/query_unavailable"])
            #expect(try harness.orderStatus("D-1") == "created")
            let dead = try DeadLetters.list(on: try harness.database.connect())
            #expect(dead.map(\.outTradeNo) == ["D-1"])
            // The channel is back; an operator replays the dead callback.
            #expect(try DeadLetters.replay(dead.map(\.callbackID), operatorName: "test",
                                           on: try harness.database.connect()).count == 1)
            try await harness.waitForDrain()
        }
        #expect(try harness.orderStatus("D-1") == "paid")
        #expect(try harness.callbackStates("D-1") == ["done"])
    }

    @Test func reconciliationPaysAnOrderWhoseCallbackNeverCame() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        harness.configuration.worker.sweeper?.interval = .seconds(1)
        try harness.order("N-1", channel: "alipay", createdSecondsAgo: 900)
        try harness.order("N-2", channel: "wechatpay", channelStatus: .pending, createdSecondsAgo: 900)
        try harness.order("N-3", channel: "points", createdSecondsAgo: 10)  // too young to ask about
        try await harness.withPipeline { _ in
            try await harness.waitUntil("the sweeper pays N-1") { try harness.orderStatus("N-1") == "paid" }
            try await Task.sleep(for: .seconds(1.5))
        }
        #expect(try harness.events("N-1") == ["transition/reconcile"])
        #expect(try harness.orderStatus("N-2") == "created")
        #expect(harness.simulator.queryCount(channel: "wechatpay", outTradeNo: "N-2") == 1)  // asked once per interval
        #expect(harness.simulator.queryCount(channel: "points", outTradeNo: "N-3") == 0)
        #expect(try harness.orderStatus("N-3") == "created")
    }

    @Test func aStoredRowThatDoesNotReadBackIsDeadCountedAndReplayable() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let order = try harness.order("CR-1", channel: "alipay")
        try await harness.withPipeline(workers: false) { sender in
            let status = try await sender.send(harness.notifies.notify(.valid, channel: "alipay", order: order, eventID: "c1"))
            #expect(status == 200)
        }
        let connection = try harness.database.connect()
        let id = try connection.query("SELECT id FROM callback_payloads")[0].decode(0, as: Int64.self)
        let stored = try connection.query("SELECT header_names[1] FROM callback_payloads WHERE id = $1", [.int64(id)])[0]
            .decode(0, as: String.self)
        // Damaged by hand: a header name gone.
        try connection.query("UPDATE callback_payloads SET header_names[1] = NULL WHERE id = $1", [.int64(id)])
        let registry = PrometheusCollectorRegistry()
        let metrics = WorkerMetrics(factory: PrometheusMetricsFactory(registry: registry))
        try await harness.withPipeline(metrics: metrics) { _ in try await harness.waitForDrain() }
        let row = try connection.query("SELECT state, reason, last_error FROM callbacks WHERE id = $1", [.int64(id)])[0]
        #expect(try row.decode(0, as: String.self) == "dead", "not rejected: the callback may be genuine")
        #expect(try row.decode(1, as: String.self) == "corrupt_row")
        #expect(try row.decode(2, as: String.self).contains("stored headers"))
        #expect(try harness.orderStatus("CR-1") == "created")
        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        #expect(text.contains(#"payhook_worker_corrupt_rows_total{channel="alipay"} 1"#))
        #expect(text.contains(#"payhook_worker_callbacks_total{channel="alipay",outcome="dead",reason="corrupt_row"} 1"#))

        // Mended and replayed, the same acknowledged callback pays the order.
        try connection.query("UPDATE callback_payloads SET header_names[1] = $2 WHERE id = $1", [.int64(id), .text(stored)])
        #expect(try DeadLetters.replay([id], operatorName: "test", on: connection) == [id])
        try await harness.withPipeline { _ in try await harness.waitForDrain() }
        #expect(try harness.orderStatus("CR-1") == "paid")
    }

    /// #18: a batch of verified callbacks costs four database round trips (the claim, the
    /// orders read, and the fenced transaction's two pipelines), plus each connection's
    /// first preparation of the claim and the read.
    @Test func aBatchTakesFourRoundTrips() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let registry = PrometheusCollectorRegistry()
        let metrics = WorkerMetrics(factory: PrometheusMetricsFactory(registry: registry))
        @Sendable func channel(_ index: Int) -> String { index % 2 == 0 ? "alipay" : "wechatpay" }
        let orders = try (0..<24).map { index in try harness.order("RT-\(index)", channel: channel(index)) }
        try await harness.withPipeline(workers: false) { sender in
            for (index, order) in orders.enumerated() {
                try await sender.send(harness.notifies.notify(.valid, channel: channel(index), order: order, eventID: "\(index)"))
            }
        }
        try await harness.withPipeline(metrics: metrics) { _ in try await harness.waitForDrain() }
        for order in orders { #expect(try harness.orderStatus(order.outTradeNo) == "paid") }
        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        func value(_ name: String) -> Int? {
            // Prometheus writes the sum as a float ("96.0").
            text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
                .flatMap { Double($0.split(separator: " ")[1]) }.map { Int($0) }
        }
        let batches = try #require(value("payhook_worker_batch_round_trips_count"))
        let roundTrips = try #require(value("payhook_worker_batch_round_trips_sum"))
        #expect(batches >= 1)
        #expect(roundTrips >= 4 * batches && roundTrips <= 4 * batches + 2 * harness.configuration.worker.threads,
                "\(roundTrips) round trips in \(batches) batches")
    }

    @Test func metricsCountOutcomesReasonsAndConflicts() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let registry = PrometheusCollectorRegistry()
        let metrics = WorkerMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let good = try harness.order("MET-1", channel: "alipay")
        let forged = try harness.order("MET-2", channel: "alipay", channelStatus: .pending)
        let conflict = try harness.order("MET-3", channel: "points", amountMinor: 500, siteAmountMinor: 400)
        try await harness.withPipeline(metrics: metrics) { sender in
            try await sender.send(harness.notifies.notify(.valid, channel: "alipay", order: good, eventID: "1"))
            try await sender.send(harness.notifies.notify(.forged, channel: "alipay", order: forged, eventID: "2"))
            try await sender.send(harness.notifies.notify(.valid, channel: "points", order: conflict, eventID: "3"))
            try await harness.waitForDrain()
        }
        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        #expect(text.contains(#"payhook_worker_callbacks_total{channel="alipay",outcome="done",reason=""} 1"#))
        #expect(text.contains(#"payhook_worker_callbacks_total{channel="alipay",outcome="rejected",reason="bad_signature"} 1"#))
        #expect(text.contains(#"payhook_worker_callbacks_total{channel="points",outcome="rejected",reason="amount_mismatch"} 1"#))
        #expect(text.contains(#"payhook_order_conflicts_total{channel="points",reason="amount_mismatch"} 1"#))
        #expect(text.contains(#"payhook_reconcile_queries_total{channel="alipay",result="pending"} 1"#))
        #expect(text.contains(#"payhook_worker_stage_seconds_count{stage="verify"}"#))
        #expect(text.contains("payhook_worker_claim_batch_size_count"))
    }
}
