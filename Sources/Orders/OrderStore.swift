public import Foundation
import PayhookCore
public import Postgres

/// The `orders` and `order_events` statements, on a connection the calling thread owns.
public enum OrderStore {
    /// The orders with these numbers, without locking (to decide what to ask the channel).
    public static func fetch(_ outTradeNos: [String], on connection: Connection) throws(PostgresError) -> [String: OrderSnapshot] {
        try read(outTradeNos, lock: false, on: connection)
    }

    /// The same, locked `FOR UPDATE` until the transaction ends. Rows are locked in key
    /// order so that workers locking overlapping batches cannot deadlock.
    public static func lock(_ outTradeNos: [String], on connection: Connection) throws(PostgresError) -> [String: OrderSnapshot] {
        try read(outTradeNos, lock: true, on: connection)
    }

    private static func read(_ outTradeNos: [String], lock: Bool, on connection: Connection) throws(PostgresError) -> [String: OrderSnapshot] {
        guard let statement = readStatement(outTradeNos, lock: lock) else { return [:] }
        return try orders(connection.query(statement))
    }

    /// `fetch` or `lock` as a statement, to send in a pipeline (nil when no number is
    /// named); `orders` reads its result.
    public static func readStatement(_ outTradeNos: [String], lock: Bool) -> SQLStatement? {
        let unique = Array(Set(outTradeNos)).sorted()
        guard !unique.isEmpty else { return nil }
        let sql = """
            SELECT out_trade_no, channel, channel_trade_no, amount_minor, currency, status, paid_at, payer, refunded_minor
            FROM orders WHERE out_trade_no = ANY($1::text[]) ORDER BY out_trade_no
            """ + (lock ? " FOR UPDATE" : "")
        return SQLStatement(prepared: lock ? "payhook_orders_lock" : "payhook_orders_fetch", sql, [.textArray(unique)])
    }

    /// The orders by number, from the result of `readStatement`.
    public static func orders(_ result: PostgresResult) throws(PostgresError) -> [String: OrderSnapshot] {
        var orders: [String: OrderSnapshot] = [:]
        for order in try snapshots(result) { orders[order.outTradeNo] = order }
        return orders
    }

    /// Locks the orders the items name, decides each item in turn and writes the result.
    /// Call inside a transaction: the locks hold until it ends.
    /// Refund items are decided after the payment items, against the refunds already
    /// recorded; all the orders both name are locked together, in key order.
    public static func apply(_ items: [ApplyItem], refunds: [RefundItem] = [], now: Date = Date(),
                             on connection: Connection) throws(PostgresError) -> OrderBatchPlan {
        guard !items.isEmpty || !refunds.isEmpty else { return OrderBatchPlan(items: [], orders: [:], now: now) }
        let orders = try lock(items.map(\.evidence.outTradeNo) + refunds.map(\.evidence.outTradeNo), on: connection)
        // Read under the orders' locks: every refund write locks its order first.
        var known: [RefundRecord] = []
        if !refunds.isEmpty { known = try RefundStore.records(Set(refunds.map(\.evidence.outTradeNo)).sorted(), on: connection) }
        let plan = OrderBatchPlan(items: items, refunds: refunds, orders: orders,
                                  knownRefunds: Dictionary(known.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first }),
                                  now: now)
        try write(plan, on: connection)
        return plan
    }

    /// Writes a plan's order changes and events; call inside the transaction that locked the orders.
    public static func write(_ plan: OrderBatchPlan, on connection: Connection) throws(PostgresError) {
        for statement in writeStatements(plan) { try connection.query(statement) }
    }

    /// `write` as statements, in the order they must run, to send in a pipeline.
    public static func writeStatements(_ plan: OrderBatchPlan) -> [SQLStatement] {
        var statements: [SQLStatement] = []
        if !plan.updates.isEmpty {
            statements.append(SQLStatement(prepared: "payhook_orders_update", """
                UPDATE orders AS o
                SET status = u.status, channel_trade_no = u.channel_trade_no, paid_at = u.paid_at, payer = u.payer,
                    refunded_minor = u.refunded_minor, updated_at = now()
                FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::bigint[])
                    AS u(out_trade_no, status, channel_trade_no, paid_at, payer, refunded_minor)
                WHERE o.out_trade_no = u.out_trade_no
                """, [
                    .textArray(plan.updates.map(\.outTradeNo)), .textArray(plan.updates.map(\.status.rawValue)),
                    .textArray(plan.updates.map(\.channelTradeNo)), .timestamptzArray(plan.updates.map(\.paidAt)),
                    .textArray(plan.updates.map(\.payer)), .int64Array(plan.updates.map(\.refundedMinor)),
                ]))
        }
        // Before the events: an `order.refunded` body reads the refund and the order as written.
        if !plan.refundWrites.isEmpty { statements.append(RefundStore.writeStatement(plan.refundWrites)) }
        if !plan.events.isEmpty { statements.append(insertStatement(plan.events)) }
        return statements
    }

    /// Writes order events and, in the same statement, the outbox event of each transition
    /// and flagged conflict (`OrderOutbox`); commits or rolls back with the change itself.
    public static func insert(_ events: [OrderEventRecord], on connection: Connection) throws(PostgresError) {
        try connection.query(insertStatement(events))
    }

    /// `insert` as a statement, to send in a pipeline.
    public static func insertStatement(_ events: [OrderEventRecord]) -> SQLStatement {
        SQLStatement(prepared: "payhook_order_events_insert", OrderOutbox.insertEventsSQL, [
            .textArray(events.map(\.outTradeNo)), .int64Array(events.map(\.callbackID)),
            .textArray(events.map(\.source.rawValue)), .textArray(events.map(\.kind.rawValue)),
            .textArray(events.map(\.fromStatus?.rawValue)), .textArray(events.map(\.toStatus?.rawValue)),
            .textArray(events.map { $0.flagged ? "true" : "false" }), .textArray(events.map(\.storedDetail)),
            .textArray(events.map(\.reason?.rawValue)), .textArray(events.map(\.refundNo)),
            .int64Array(events.map(\.refundMinor)),
        ])
    }

    /// Takes the right to ask the channel about these orders now: those still `created`
    /// and not asked within `everySeconds` are stamped and returned. Shared by all workers
    /// on all hosts, so a flood of forged callbacks costs the channel at most one query
    /// per order per interval.
    public static func claimReconciliation(_ outTradeNos: [String], everySeconds: Int,
                                           on connection: Connection) throws(PostgresError) -> [OrderSnapshot] {
        guard !outTradeNos.isEmpty else { return [] }
        let result = try connection.query(prepared: "payhook_orders_reconcile_claim", """
            UPDATE orders SET reconciled_at = now()
            WHERE out_trade_no = ANY($1::text[]) AND status = 'created'
              AND (reconciled_at IS NULL OR reconciled_at < now() - $2 * interval '1 second')
            RETURNING out_trade_no, channel, channel_trade_no, amount_minor, currency, status, paid_at, payer, refunded_minor
            """, [.textArray(Array(Set(outTradeNos)).sorted()), .int64(Int64(everySeconds))])
        return try snapshots(result)
    }

    /// The sweeper's pick: orders still `created` more than `afterSeconds` after creation,
    /// younger than `maxAgeSeconds`, not asked within `everySeconds`; stamped as asked.
    public static func claimStaleOrders(limit: Int, afterSeconds: Int, everySeconds: Int, maxAgeSeconds: Int,
                                        on connection: Connection) throws(PostgresError) -> [OrderSnapshot] {
        let result = try connection.query(prepared: "payhook_orders_sweep_claim", """
            UPDATE orders SET reconciled_at = now()
            WHERE out_trade_no IN (
                SELECT out_trade_no FROM orders
                WHERE status = 'created'
                  AND created_at < now() - $2 * interval '1 second'
                  AND created_at > now() - $4 * interval '1 second'
                  AND (reconciled_at IS NULL OR reconciled_at < now() - $3 * interval '1 second')
                ORDER BY created_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED)
            RETURNING out_trade_no, channel, channel_trade_no, amount_minor, currency, status, paid_at, payer, refunded_minor
            """, [.int64(Int64(limit)), .int64(Int64(afterSeconds)), .int64(Int64(everySeconds)),
                  .int64(Int64(maxAgeSeconds))])
        return try snapshots(result)
    }

    private static func snapshots(_ result: PostgresResult) throws(PostgresError) -> [OrderSnapshot] {
        try result.rows.map { row throws(PostgresError) in
            OrderSnapshot(
                outTradeNo: try row.decode(0), channel: try row.decode(1), channelTradeNo: try row.decode(2),
                amountMinor: try row.decode(3), currency: try row.decode(4), status: try .decoded(row.decode(5)),
                paidAt: try row.decode(6),
                payer: try row.decode(7), refundedMinor: try row.decode(8))
        }
    }
}

extension OrderStatus {
    /// `orders.status` as read. Its CHECK allows only these; anything else is a schema the code does not know.
    static func decoded(_ text: String) throws(PostgresError) -> OrderStatus {
        guard let status = OrderStatus(rawValue: text) else {
            throw PostgresError(code: .decoding, context: "orders.status is not one of created, paid, closed, refunded")
        }
        return status
    }
}
