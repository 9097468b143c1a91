import AsyncHTTPClient
import NIOCore
public import Foundation
public import Postgres
import Channels

/// The load run's database side: it creates the run's orders, waits for the queue to work
/// through the run's callbacks, and compares what PostgreSQL holds with what was sent.
/// Reads only the contract's tables (`orders`, the `callbacks` view), so it works with any
/// worker that follows the contract.
public enum LoadCheck {
    /// Inserts the plan's orders as the site would: status `created`, amounts in minor units.
    public static func insertOrders(_ plan: LoadPlan, on connection: Connection) throws {
        let chunk = 5000
        var start = 0
        while start < plan.orders.count {
            let slice = plan.orders[start..<min(start + chunk, plan.orders.count)]
            try connection.query(
                """
                INSERT INTO orders (out_trade_no, channel, amount_minor, currency)
                SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[])
                """,
                [.textArray(slice.map(\.outTradeNo)), .textArray(slice.map(\.channel)),
                 .int64Array(slice.map(\.book.amountMinor)), .textArray(slice.map(\.book.currency))])
            start += chunk
        }
    }

    /// The run's callbacks still waiting or in a worker's hands.
    public static func unfinishedCallbacks(_ plan: LoadPlan, on connection: Connection) throws -> Int {
        let result = try connection.query(
            "SELECT count(*) FROM callbacks WHERE query LIKE $1 AND state IN ('pending', 'processing')",
            [.text("sim=\(plan.runID).%")])
        return Int(try result[0].decode(0, as: Int64.self))
    }

    /// Polls until none of the run's callbacks is pending or processing, or `timeout` passes;
    /// calls `progress` with the unfinished count after each poll. Returns whether it drained.
    public static func waitForDrain(_ plan: LoadPlan, on connection: Connection, timeout: Duration,
                                    progress: (Int) -> Void = { _ in }) async throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            let unfinished = try unfinishedCallbacks(plan, on: connection)
            progress(unfinished)
            if unfinished == 0 { return true }
            if clock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// One disagreement between what was sent and what the database holds.
    public struct Mismatch: Sendable, Hashable {
        public var category: String
        public var outTradeNo: String
        public var detail: String
    }

    /// What the database holds for the run.
    public struct Report: Sendable {
        /// Order status counts per kind of notify the order got.
        public var orderStatuses: [NotifyKind: [String: Int]] = [:]
        /// Callback counts by `state` or `state/reason`.
        public var callbackOutcomes: [String: Int] = [:]
        public var mismatches: [Mismatch] = []
        /// Acknowledged callbacks not found because retention dropped their partition: sent
        /// before the oldest partition still kept. Their orders are still checked (retention
        /// never deletes orders).
        public var droppedByRetention = 0

        /// Mismatch counts per category.
        public var mismatchCounts: [String: Int] {
            mismatches.reduce(into: [:]) { $0[$1.category, default: 0] += 1 }
        }
    }

    public static let paidButShouldNotBe = "order paid that should not be"
    public static let validNotPaid = "valid order not paid"
    public static let acknowledgedButMissing = "acknowledged callback missing"
    public static let unexpectedOutcome = "callback outcome differs"
    public static let unfinished = "callback not finished"
    public static let unexpectedStatus = "unexpected HTTP status"

    /// Compares the database with the plan and the statuses the receiver answered; `sentAt`
    /// (each send's wall-clock start) tells a callback that retention dropped from a lost one.
    public static func check(_ plan: LoadPlan, statuses: [Int?], sentAt: [Date?] = [],
                             on connection: Connection) throws -> Report {
        var report = Report()
        // Only retention removes partitions. A callback is received after its send began: one
        // missing whose send began before the oldest partition kept was received into a
        // partition retention dropped, or lost within its own answer's time of that boundary
        // (its order is still checked).
        let kept: Date? = try connection.query("""
            SELECT min(lower_bound) FROM queue_partitions WHERE parent = 'callback_jobs' AND NOT is_default
            """)[0].decode(0)
        var orderStatus: [String: String] = [:]
        let orders = try connection.query("SELECT out_trade_no, status FROM orders WHERE out_trade_no LIKE $1",
                                          [.text(plan.orderNumberPattern)])
        for row in orders.rows {
            orderStatus[try row.decode(0, as: String.self)] = try row.decode(1, as: String.self)
        }
        var stored: [Int: (state: String, reason: String?)] = [:]
        let prefix = "sim=\(plan.runID)."
        let callbacks = try connection.query("SELECT query, state, reason FROM callbacks WHERE query LIKE $1",
                                             [.text(prefix + "%")])
        for row in callbacks.rows {
            let query = try row.decode(0, as: String.self)
            guard let sequence = Int(query.dropFirst(prefix.count)) else { continue }
            stored[sequence] = (try row.decode(1, as: String.self), try row.decode(2, as: String?.self))
        }

        for order in plan.orders {
            let status = orderStatus[order.outTradeNo] ?? "missing"
            report.orderStatuses[order.kind, default: [:]][status, default: 0] += 1
            if order.kind.paysOrder, status != "paid" {
                report.mismatches.append(Mismatch(category: validNotPaid, outTradeNo: order.outTradeNo, detail: "\(order.kind) order is \(status)"))
            } else if !order.kind.paysOrder, status == "paid" {
                report.mismatches.append(Mismatch(category: paidButShouldNotBe, outTradeNo: order.outTradeNo, detail: "\(order.kind) order is paid"))
            }
        }
        for send in plan.sends {
            let order = plan.orders[send.orderIndex]
            let status = send.sequence < statuses.count ? statuses[send.sequence] : nil
            let callback = stored[send.sequence]
            if let callback {
                let key = callback.reason.map { "\(callback.state)/\($0)" } ?? callback.state
                report.callbackOutcomes[key, default: 0] += 1
            }
            if let status, !order.kind.isExpectedStatus(status), !(500..<600).contains(status) {
                report.mismatches.append(Mismatch(category: unexpectedStatus, outTradeNo: order.outTradeNo, detail: "\(order.kind) notify answered \(status)"))
            }
            guard let expected = order.kind.expectedCallback else {
                if callback != nil {
                    report.mismatches.append(Mismatch(category: unexpectedOutcome, outTradeNo: order.outTradeNo, detail: "\(order.kind) notify was stored"))
                }
                continue
            }
            guard let status, (200..<300).contains(status) else { continue }
            guard let callback else {
                if let kept, send.sequence < sentAt.count, let sent = sentAt[send.sequence],
                   sent < kept {
                    report.droppedByRetention += 1
                    continue
                }
                report.mismatches.append(Mismatch(category: acknowledgedButMissing, outTradeNo: order.outTradeNo, detail: "send \(send.sequence) (\(order.kind))"))
                continue
            }
            if callback.state == "pending" || callback.state == "processing" {
                report.mismatches.append(Mismatch(category: unfinished, outTradeNo: order.outTradeNo, detail: "\(order.kind) callback is \(callback.state)"))
            } else if callback.state != expected.state || (expected.reason != nil && callback.reason != expected.reason) {
                let got = callback.reason.map { "\(callback.state)/\($0)" } ?? callback.state
                let want = expected.reason.map { "\(expected.state)/\($0)" } ?? expected.state
                report.mismatches.append(Mismatch(category: unexpectedOutcome, outTradeNo: order.outTradeNo, detail: "\(order.kind): \(got), expected \(want)"))
            }
        }
        return report
    }

    public static let paidEventsNotOne = "paid order without exactly one order.paid event"
    public static let eventForUnchangedOrder = "event for an order that did not change"
    public static let eventNotCommitted = "event the site got that Payhook never committed"

    /// The run's webhook deliveries not yet delivered (pending or in flight).
    public static func undeliveredWebhooks(_ plan: LoadPlan, on connection: Connection) throws -> Int {
        try connection.query("""
            SELECT count(*) FROM webhook_deliveries AS d JOIN order_outbox AS o ON o.event_id = d.event_id
            WHERE o.out_trade_no LIKE $1 AND d.state IN ('pending', 'processing')
            """, [.text(plan.orderNumberPattern)])[0].decode(0, as: Int.self)
    }

    /// Waits until the run's deliveries are all delivered (or dead), up to `timeout`.
    public static func waitForDeliveries(_ plan: LoadPlan, on connection: Connection, timeout: Duration,
                                         progress: (Int) -> Void) async throws -> Bool {
        let end = ContinuousClock.now + timeout
        while true {
            let left = try undeliveredWebhooks(plan, on: connection)
            progress(left)
            if left == 0 { return true }
            if ContinuousClock.now >= end { return false }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    public struct WebhookReport: Sendable {
        public var events = 0
        public var repeats = 0
        public var mismatches: [Mismatch] = []
    }

    /// Compares what the simulated site got with the database: every paid order of the run
    /// had exactly one distinct `order.paid` event id delivered, no order that did not change
    /// had one, and every id the site got is an event Payhook committed.
    public static func checkWebhooks(_ plan: LoadPlan, siteURL: String, on connection: Connection) async throws -> WebhookReport {
        let eventsURL = siteURL.replacingOccurrences(of: "/site/webhooks", with: "/site/events")
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: eventsURL), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 256 << 20)
        let tally = try JSONDecoder().decode(SimulatedSite.Tally.self, from: Data(Array(buffer: body)))
        let prefix = LoadPlan.orderPrefix(plan.runID)
        let received = tally.events.filter { $0.outTradeNo?.hasPrefix(prefix) == true }
        var report = WebhookReport(events: received.count, repeats: received.reduce(0) { $0 + $1.deliveries - 1 })
        var committed = Set<String>()
        for row in try connection.query("SELECT event_id FROM order_outbox WHERE out_trade_no LIKE $1",
                                        [.text(prefix + "%")]).rows {
            committed.insert(try row.decode(0, as: String.self))
        }
        var paidIDs: [String: Set<String>] = [:]
        for event in received {
            if !committed.contains(event.id) {
                report.mismatches.append(Mismatch(category: eventNotCommitted, outTradeNo: event.outTradeNo ?? "-", detail: event.id))
            }
            if event.type == "order.paid", let order = event.outTradeNo { paidIDs[order, default: []].insert(event.id) }
        }
        for order in plan.orders {
            let ids = paidIDs[order.outTradeNo]?.count ?? 0
            if order.kind.paysOrder, ids != 1 {
                report.mismatches.append(Mismatch(category: paidEventsNotOne, outTradeNo: order.outTradeNo, detail: "\(ids) ids"))
            } else if !order.kind.paysOrder, ids != 0 {
                report.mismatches.append(Mismatch(category: eventForUnchangedOrder, outTradeNo: order.outTradeNo, detail: "\(ids) ids"))
            }
        }
        return report
    }
}
