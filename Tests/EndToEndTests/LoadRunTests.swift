import Foundation
import PayhookCore
import HummingbirdTesting
import Postgres
import PostgresTestSupport
import Simulator
import Testing

/// `payhook sim load` in miniature: a realistic mix of 300 orders sent over real sockets to
/// the receiver, worked by the pool, and the load generator's summary held against what
/// PostgreSQL says.
@Suite(.timeLimit(.minutes(3))) struct LoadRunTests {
    static let orders = 300

    @Test func loadSummaryAgreesWithTheDatabase() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let plan = await LoadPlan.make(factory: harness.notifies, mix: .realistic, count: Self.orders)
        try LoadCheck.insertOrders(plan, on: try harness.database.connect())
        // As `sim load` does it: over HTTP, the simulator signing every answer before the first send.
        try await plan.register(withSimulatorAt: harness.server.baseURL, caFile: harness.caFile)

        let outcome = Locked<(LoadRunner.Result, LoadCheck.Report, Bool)?>(nil)
        try await harness.withPipeline { sender in
            let port = try #require(sender.client.port)
            let runner = LoadRunner(options: .init(receiverURL: "http://127.0.0.1:\(port)", connections: 16))
            let result = try await runner.run(plan)
            let connection = try harness.database.connect()
            let drained = try await LoadCheck.waitForDrain(plan, on: connection, timeout: .seconds(90))
            let report = try LoadCheck.check(plan, statuses: result.statuses, on: connection)
            outcome.withLock { $0 = (result, report, drained) }
        }
        let (result, report, drained) = try #require(outcome.value)

        #expect(drained)
        #expect(report.mismatches.isEmpty, "\(report.mismatches.prefix(5))")
        // What was sent, worked out from the plan alone, is what the database holds.
        let kinds = LoadMix.realistic.counts(total: Self.orders)
        #expect(kinds.count == NotifyKind.allCases.count, "the mix covers every kind")
        for (kind, count) in kinds {
            #expect(report.orderStatuses[kind] == [kind.paysOrder ? "paid" : "created": count], "\(kind)")
        }
        var expectedOutcomes: [String: Int] = [:]
        var expectedAnswers: [Int?: Int] = [:]
        for send in plan.sends {
            let kind = plan.orders[send.orderIndex].kind
            // Acknowledgements in each channel's own format: WeChat Pay 204, the others 200.
            let acknowledgement = send.notify.channel == SimulatedChannels.wechatPayID ? 204 : 200
            expectedAnswers[kind == .oversize ? 413 : acknowledgement, default: 0] += 1
            if let expected = kind.expectedCallback {
                expectedOutcomes[expected.reason.map { "\(expected.state)/\($0)" } ?? expected.state, default: 0] += 1
            }
        }
        #expect(report.callbackOutcomes == expectedOutcomes)
        #expect(result.statusCounts == expectedAnswers)
        #expect(result.sentAt.allSatisfy { $0 != nil })
        // The sends file carries each answer's latency, the same numbers the summary is made of
        // (the soak benchmark takes per-minute percentiles from that column).
        let lines = result.sendsCSV(plan).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(lines.first == ["sequence", "out_trade_no", "kind", "channel", "sent_at", "status", "latency_us"])
        let latencies = lines.dropFirst().compactMap { $0.count == 7 ? Int64($0[6]) : nil }
        #expect(latencies.count == plan.sends.count)
        #expect(latencies.allSatisfy { $0 > 0 })
        #expect(latencies.max() == result.latencies.maximum)
        #expect(LatencySummary(microseconds: latencies).p99 == result.latencies.p99)

        // Paid exactly once each; the resent copies recorded as duplicates; nothing flagged.
        let connection = try harness.database.connect()
        let run = plan.orderNumberPattern
        func count(_ sql: String) throws -> Int { try connection.query(sql, [.text(run)])[0].decode(0, as: Int.self) }
        let paying = (kinds[.valid] ?? 0) + (kinds[.duplicate] ?? 0)
        #expect(try count("SELECT count(*) FROM order_events WHERE kind = 'transition' AND out_trade_no LIKE $1") == paying)
        #expect(try count("""
            SELECT count(DISTINCT out_trade_no) FROM order_events
            WHERE kind = 'transition' AND to_status = 'paid' AND out_trade_no LIKE $1
            """) == paying)
        #expect(try count("SELECT count(*) FROM order_events WHERE kind = 'duplicate' AND out_trade_no LIKE $1")
                == kinds[.duplicate])
        #expect(try count("SELECT count(*) FROM order_events WHERE flagged AND out_trade_no LIKE $1") == 0)
        // After a bad signature the worker asks the channel once; it says not paid, so the order stays created.
        for order in plan.orders where order.kind == .forged || order.kind == .tampered {
            #expect(harness.simulator.queryCount(channel: order.channel, outTradeNo: order.outTradeNo) == 1,
                    "\(order.kind) \(order.outTradeNo)")
        }
    }
}
