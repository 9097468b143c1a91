public import Foundation
public import PayhookCore
public import Postgres

/// `order_refunds`: every refund of an order, keyed by the order and the site's refund
/// number (so a repeated notify or API call is recognised), with the channel's refund id.
/// Written under the order's row lock, in the same transaction as `refunded_minor`.
public enum RefundStore {
    static let migration = """
        CREATE TABLE order_refunds (
            out_trade_no text NOT NULL REFERENCES orders (out_trade_no),
            out_refund_no text NOT NULL,
            channel text NOT NULL,
            channel_refund_id text,
            amount_minor bigint NOT NULL CHECK (amount_minor > 0),
            currency text NOT NULL,
            status text NOT NULL CHECK (status IN ('processing', 'succeeded', 'abnormal', 'closed', 'failed')),
            reason text,
            request_digest bytea,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            refunded_at timestamptz,
            PRIMARY KEY (out_trade_no, out_refund_no),
            CHECK ((status = 'succeeded') = (refunded_at IS NOT NULL))
        );
        CREATE UNIQUE INDEX order_refunds_channel_channel_refund_id_idx
            ON order_refunds (channel, channel_refund_id) WHERE channel_refund_id IS NOT NULL;
        CREATE INDEX order_refunds_processing_idx ON order_refunds (updated_at) WHERE status = 'processing';

        ALTER TABLE orders ADD COLUMN refunded_minor bigint NOT NULL DEFAULT 0;
        ALTER TABLE orders ADD CONSTRAINT orders_refunded_minor_check
            CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor);
        ALTER TABLE orders DROP CONSTRAINT orders_status_check;
        ALTER TABLE orders ADD CONSTRAINT orders_status_check
            CHECK (status IN ('created', 'paid', 'closed', 'refunded'));
        ALTER TABLE orders DROP CONSTRAINT orders_check;
        ALTER TABLE orders ADD CONSTRAINT orders_paid_at_check
            CHECK ((status IN ('paid', 'refunded')) = (paid_at IS NOT NULL));

        ALTER TABLE order_events ADD COLUMN out_refund_no text;
        ALTER TABLE order_events ADD COLUMN refund_minor bigint;
        ALTER TABLE order_events DROP CONSTRAINT order_events_kind_check;
        ALTER TABLE order_events ADD CONSTRAINT order_events_kind_check
            CHECK (kind IN ('transition', 'duplicate', 'conflict', 'refund'));
        """

    static let columns = """
        out_trade_no, out_refund_no, channel, channel_refund_id, amount_minor, currency, status, reason, refunded_at
        """

    /// The refunds of these orders.
    public static func records(_ outTradeNos: [String], on connection: Connection) throws(PostgresError) -> [RefundRecord] {
        guard !outTradeNos.isEmpty else { return [] }
        return try records(connection.query(recordsStatement(outTradeNos)))
    }

    /// `records` as a statement, to send in a pipeline; `records(_:)` reads its result.
    public static func recordsStatement(_ outTradeNos: [String]) -> SQLStatement {
        SQLStatement(prepared: "payhook_refunds_of_orders", """
            SELECT \(columns) FROM order_refunds WHERE out_trade_no = ANY($1::text[]) ORDER BY out_trade_no, created_at
            """, [.textArray(outTradeNos)])
    }

    /// One refund, if recorded.
    public static func record(outTradeNo: String, refundNo: String, on connection: Connection) throws(PostgresError) -> RefundRecord? {
        try records(connection.query(prepared: "payhook_refunds_find", """
            SELECT \(columns) FROM order_refunds WHERE out_trade_no = $1 AND out_refund_no = $2
            """, [.text(outTradeNo), .text(refundNo)])).first
    }

    /// Inserts or updates the refunds (their order rows locked by the caller's transaction).
    static func write(_ refunds: [RefundRecord], on connection: Connection) throws(PostgresError) {
        try connection.query(writeStatement(refunds))
    }

    /// `write` as a statement, to send in a pipeline.
    static func writeStatement(_ refunds: [RefundRecord]) -> SQLStatement {
        SQLStatement(prepared: "payhook_refunds_upsert", """
            INSERT INTO order_refunds AS r
                (out_trade_no, out_refund_no, channel, channel_refund_id, amount_minor, currency, status, reason, refunded_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[],
                                 $8::text[], $9::timestamptz[])
            ON CONFLICT (out_trade_no, out_refund_no) DO UPDATE
            SET status = excluded.status, channel_refund_id = coalesce(excluded.channel_refund_id, r.channel_refund_id),
                refunded_at = excluded.refunded_at, updated_at = now()
            """, [
                .textArray(refunds.map(\.outTradeNo)), .textArray(refunds.map(\.refundNo)), .textArray(refunds.map(\.channel)),
                .textArray(refunds.map(\.channelRefundID)), .int64Array(refunds.map(\.amountMinor)),
                .textArray(refunds.map(\.currency)), .textArray(refunds.map(\.status.rawValue)),
                .textArray(refunds.map(\.reason)), .timestamptzArray(refunds.map(\.refundedAt)),
            ])
    }

    /// What a refund request through the site API found.
    public enum BeginOutcome: Sendable, Equatable {
        /// Recorded now as `processing`: call the channel.
        case begun(RefundRecord)
        /// The same request again: the refund it made, as it stands.
        case repeated(RefundRecord)
        /// The number is taken by a different request.
        case conflict
        case orderNotFound
        /// The order is not paid (or fully refunded already): nothing to give back.
        case notRefundable(OrderStatus)
        /// More than is left to refund, counting refunds still in flight.
        case exceedsPaid(remainingMinor: Int64)
    }

    /// Records a refund the site asks for, before the channel is called, so that a crash
    /// between the call and its answer leaves a `processing` refund to ask about, never a
    /// lost one. Locks the order; refunds still processing count against what is left.
    public static func begin(outTradeNo: String, refundNo: String, amountMinor: Int64, reason: String?,
                             digest: [UInt8], on connection: Connection) throws(PostgresError) -> BeginOutcome {
        try connection.transaction { connection throws(PostgresError) -> BeginOutcome in
            guard let order = try OrderStore.lock([outTradeNo], on: connection)[outTradeNo] else { return .orderNotFound }
            let existing = try connection.query(prepared: "payhook_refunds_find_digest", """
                SELECT \(columns), request_digest FROM order_refunds WHERE out_trade_no = $1 AND out_refund_no = $2
                """, [.text(outTradeNo), .text(refundNo)])
            if !existing.isEmpty {
                let stored: [UInt8]? = try existing[0].decode(9)
                guard stored == digest else { return .conflict }
                return .repeated(try records(existing)[0])
            }
            guard order.status == .paid else { return .notRefundable(order.status) }
            let inFlight: Int64 = try connection.query(prepared: "payhook_refunds_in_flight", """
                SELECT coalesce(sum(amount_minor), 0)::bigint FROM order_refunds WHERE out_trade_no = $1 AND status = 'processing'
                """, [.text(outTradeNo)])[0].decode(0)
            let remaining = order.amountMinor - order.refundedMinor - inFlight
            guard amountMinor <= remaining else { return .exceedsPaid(remainingMinor: max(0, remaining)) }
            let record = RefundRecord(outTradeNo: outTradeNo, refundNo: refundNo, channel: order.channel, channelRefundID: nil,
                                      amountMinor: amountMinor, currency: order.currency, status: .processing, reason: reason)
            try connection.query(prepared: "payhook_refunds_begin", """
                INSERT INTO order_refunds (out_trade_no, out_refund_no, channel, amount_minor, currency, status, reason, request_digest)
                VALUES ($1, $2, $3, $4, $5, 'processing', $6, $7)
                """, [.text(outTradeNo), .text(refundNo), .text(order.channel), .int64(amountMinor), .text(order.currency),
                      .text(reason), .bytea(digest)])
            try OrderStore.insert([OrderEventRecord(
                outTradeNo: outTradeNo, callbackID: nil, source: .api, kind: .refund, fromStatus: order.status,
                toStatus: order.status, flagged: false, detail: "refund of \(amountMinor) (minor units) asked through the site API",
                refundNo: refundNo)], on: connection)
            return .begun(record)
        }
    }

    /// Refunds still `processing` and not asked about within `everySeconds`, oldest first,
    /// stamped (`updated_at`) so that sweepers on other hosts skip them for that long.
    public static func claimProcessing(limit: Int, everySeconds: Int, on connection: Connection) throws(PostgresError) -> [RefundRecord] {
        try records(connection.query(prepared: "payhook_refunds_processing_claim", """
            UPDATE order_refunds SET updated_at = now()
            WHERE (out_trade_no, out_refund_no) IN (
                SELECT out_trade_no, out_refund_no FROM order_refunds
                WHERE status = 'processing' AND updated_at < now() - $2 * interval '1 second'
                ORDER BY updated_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED)
            RETURNING \(columns)
            """, [.int64(Int64(limit)), .int64(Int64(everySeconds))]))
    }

    /// Marks a refund the channel refused for good as `failed` (only while it is processing).
    public static func fail(outTradeNo: String, refundNo: String, detail: String, on connection: Connection) throws(PostgresError) {
        try connection.transaction { connection throws(PostgresError) in
            guard let order = try OrderStore.lock([outTradeNo], on: connection)[outTradeNo] else { return }
            let changed = try connection.query(prepared: "payhook_refunds_fail", """
                UPDATE order_refunds SET status = 'failed', updated_at = now()
                WHERE out_trade_no = $1 AND out_refund_no = $2 AND status = 'processing' RETURNING 1
                """, [.text(outTradeNo), .text(refundNo)])
            guard !changed.isEmpty else { return }
            try OrderStore.insert([OrderEventRecord(
                outTradeNo: outTradeNo, callbackID: nil, source: .api, kind: .refund, fromStatus: order.status,
                toStatus: order.status, flagged: false, detail: "refund failed at the channel: " + detail,
                refundNo: refundNo)], on: connection)
        }
    }

    public static func records(_ result: PostgresResult) throws(PostgresError) -> [RefundRecord] {
        try result.rows.map { row throws(PostgresError) in
            let statusText: String = try row.decode(6)
            guard let status = RefundStatus(rawValue: statusText) else {
                throw PostgresError(code: .decoding, context: "order_refunds.status is not a known refund status")
            }
            return RefundRecord(
                outTradeNo: try row.decode(0), refundNo: try row.decode(1), channel: try row.decode(2),
                channelRefundID: try row.decode(3), amountMinor: try row.decode(4), currency: try row.decode(5),
                status: status, reason: try row.decode(7), refundedAt: try row.decode(8))
        }
    }
}
