public import Foundation
public import Postgres

/// An order's events as the API and `payhook orders show` list them, and the flagged count.
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

    /// Order events flagged as conflicts, for `payhook status`.
    public static func flaggedConflicts(on connection: Connection) throws(PostgresError) -> Int64 {
        try connection.query("SELECT count(*) FROM order_events WHERE flagged")[0].decode(0)
    }

    /// The order's events, oldest first.
    public static func events(_ outTradeNo: String, on connection: Connection) throws(PostgresError) -> [Event] {
        try connection.query("""
            SELECT kind, source, from_status, to_status, flagged, detail, callback_id, created_at
            FROM order_events WHERE out_trade_no = $1 ORDER BY id
            """, [.text(outTradeNo)]).rows.map { event throws(PostgresError) in
            Event(kind: try event.decode(0), source: try event.decode(1), fromStatus: try event.decode(2),
                  toStatus: try event.decode(3), flagged: try event.decode(4), detail: try event.decode(5),
                  callbackID: try event.decode(6), at: try event.decode(7))
        }
    }
}
