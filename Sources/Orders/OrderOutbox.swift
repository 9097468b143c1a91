public import Foundation
public import Postgres

/// The transactional outbox: every order transition, refund and flagged conflict that an apply
/// commits also commits one event row, in the same statement as its `order_events` row,
/// with a stable id and the exact body the site will be sent. An event exists if and only
/// if its change committed. After commit PostgreSQL delivers `NOTIFY payhook_order_events`
/// with the event id to co-located applications.
public enum OrderOutbox {
    /// The `NOTIFY` channel, one notification per event, its id as the payload.
    public static let notifyChannel = "payhook_order_events"

    /// What an event says happened.
    public enum Kind: String, Sendable, CaseIterable {
        case paid = "order.paid"
        case closed = "order.closed"
        case conflict = "order.conflict"
        case refunded = "order.refunded"
    }

    /// One outbox row.
    public struct Event: Sendable, Equatable {
        public let eventID: String
        public let kind: String
        public let outTradeNo: String
        /// The JSON body, exactly as it is signed and sent.
        public let payload: String
        public let createdAt: Date
    }

    static let migration = """
        ALTER TABLE orders ADD COLUMN payer text;
        ALTER TABLE order_events ADD COLUMN reason text;
        CREATE TABLE order_outbox (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id text NOT NULL UNIQUE,
            order_event_id bigint NOT NULL REFERENCES order_events (id),
            kind text NOT NULL CHECK (kind IN ('order.paid', 'order.closed', 'order.conflict', 'order.refunded')),
            out_trade_no text NOT NULL REFERENCES orders (out_trade_no),
            payload text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX order_outbox_out_trade_no_idx ON order_outbox (out_trade_no);
        CREATE INDEX order_outbox_created_at_idx ON order_outbox (created_at);
        """

    /// `order_events` rows in, and for each transition or flagged conflict an outbox row
    /// whose body is built from the order as this transaction left it. The body follows
    /// Standard Webhooks' `{type, timestamp, data}`; amounts are decimal strings and minor
    /// units, never floating point.
    static let insertEventsSQL = """
        WITH input AS (
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                                 $7::text[]::boolean[], $8::text[], $9::text[], $10::text[], $11::bigint[]) WITH ORDINALITY
                AS input(out_trade_no, callback_id, source, kind, from_status, to_status, flagged, detail, reason,
                         out_refund_no, refund_minor, position)
        ), inserted AS (
            INSERT INTO order_events
                (out_trade_no, callback_id, source, kind, from_status, to_status, flagged, detail, reason,
                 out_refund_no, refund_minor)
            SELECT out_trade_no, callback_id, source, kind, from_status, to_status, flagged, detail, reason,
                   out_refund_no, refund_minor
            FROM input ORDER BY position
            RETURNING id, out_trade_no, kind, to_status, flagged, reason, created_at, out_refund_no, refund_minor
        ), outbox AS (
            INSERT INTO order_outbox (event_id, order_event_id, kind, out_trade_no, payload, created_at)
            SELECT e.event_id, e.id, e.type, e.out_trade_no,
                   json_build_object(
                       'type', e.type,
                       'timestamp', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                       'data', json_build_object(
                           'event_id', e.event_id,
                           'out_trade_no', o.out_trade_no,
                           'channel', o.channel,
                           'channel_trade_no', o.channel_trade_no,
                           'amount', (o.amount_minor / 100)::text || '.' || lpad((o.amount_minor % 100)::text, 2, '0'),
                           'amount_minor', o.amount_minor,
                           'currency', o.currency,
                           'payer', o.payer,
                           'status', o.status,
                           'paid_at', to_char(o.paid_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                           'reason', e.reason,
                           'reported_status', CASE WHEN e.kind = 'conflict' THEN e.to_status END,
                           'refunded_amount', (o.refunded_minor / 100)::text || '.' || lpad((o.refunded_minor % 100)::text, 2, '0'),
                           'refunded_minor', o.refunded_minor,
                           'refund', CASE WHEN e.out_refund_no IS NOT NULL THEN json_build_object(
                               'out_refund_no', e.out_refund_no,
                               'channel_refund_id', r.channel_refund_id,
                               'amount', (r.amount_minor / 100)::text || '.' || lpad((r.amount_minor % 100)::text, 2, '0'),
                               'amount_minor', r.amount_minor,
                               'status', r.status,
                               'refunded_at', to_char(r.refunded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')) END))::text,
                   e.created_at
            FROM (SELECT inserted.*, 'evt_' || replace(gen_random_uuid()::text, '-', '') AS event_id,
                         CASE WHEN kind = 'conflict' THEN 'order.conflict'
                              WHEN kind = 'refund' THEN 'order.refunded'
                              WHEN to_status = 'paid' THEN 'order.paid'
                              ELSE 'order.closed' END AS type
                  FROM inserted
                  WHERE kind = 'transition' AND to_status IN ('paid', 'closed') OR kind = 'conflict' AND flagged
                     OR kind = 'refund' AND refund_minor IS NOT NULL) AS e
            JOIN orders AS o ON o.out_trade_no = e.out_trade_no
            LEFT JOIN order_refunds AS r ON r.out_trade_no = e.out_trade_no AND r.out_refund_no = e.out_refund_no
            RETURNING event_id
        )
        SELECT pg_notify('\(notifyChannel)', event_id) FROM outbox
        """

    /// Events, newest first, optionally of one order.
    public static func list(outTradeNo: String? = nil, limit: Int = 50, on connection: Connection) throws(PostgresError) -> [Event] {
        try connection.query("""
            SELECT event_id, kind, out_trade_no, payload, created_at FROM order_outbox
            WHERE $1::text IS NULL OR out_trade_no = $1
            ORDER BY id DESC LIMIT $2
            """, [.text(outTradeNo), .int64(Int64(limit))]).rows.map { row throws(PostgresError) in
            Event(eventID: try row.decode(0), kind: try row.decode(1), outTradeNo: try row.decode(2),
                  payload: try row.decode(3), createdAt: try row.decode(4))
        }
    }
}
