public import Foundation
public import Postgres

/// The admin view of one order, by `out_trade_no` or channel trade number, with its events.
public enum OrderLookup {
    public struct Event: Sendable, Codable {
        public let kind: String
        public let source: String
        public let fromStatus: String?
        public let toStatus: String?
        public let flagged: Bool
        public let detail: String?
        public let callbackID: Int64?
        public let at: Date
    }

    public struct Order: Sendable, Codable {
        public let outTradeNo: String
        public let channel: String
        public let channelTradeNo: String?
        public let amountMinor: Int64
        public let currency: String
        public let status: String
        public let createdAt: Date
        public let paidAt: Date?
        public let updatedAt: Date
        public let events: [Event]
    }

    /// Order events flagged as conflicts, for `payhook status`.
    public static func flaggedConflicts(on connection: Connection) throws(PostgresError) -> Int64 {
        try connection.query("SELECT count(*) FROM order_events WHERE flagged")[0].decode(0)
    }

    public static func find(_ id: String, on connection: Connection) throws(PostgresError) -> Order? {
        let found = try connection.query("""
            SELECT out_trade_no, channel, channel_trade_no, amount_minor, currency, status, created_at, paid_at,
                   updated_at
            FROM orders WHERE out_trade_no = $1 OR channel_trade_no = $1
            ORDER BY out_trade_no = $1 DESC LIMIT 1
            """, [.text(id)])
        guard !found.isEmpty else { return nil }
        let row = found[0]
        let outTradeNo: String = try row.decode(0)
        let events = try connection.query("""
            SELECT kind, source, from_status, to_status, flagged, detail, callback_id, created_at
            FROM order_events WHERE out_trade_no = $1 ORDER BY id
            """, [.text(outTradeNo)]).rows.map { event throws(PostgresError) in
            Event(kind: try event.decode(0), source: try event.decode(1), fromStatus: try event.decode(2),
                  toStatus: try event.decode(3), flagged: try event.decode(4), detail: try event.decode(5),
                  callbackID: try event.decode(6), at: try event.decode(7))
        }
        return Order(outTradeNo: outTradeNo, channel: try row.decode(1), channelTradeNo: try row.decode(2),
                     amountMinor: try row.decode(3), currency: try row.decode(4), status: try row.decode(5),
                     createdAt: try row.decode(6), paidAt: try row.decode(7), updatedAt: try row.decode(8),
                     events: events)
    }
}
