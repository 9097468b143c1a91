public import Foundation
public import Postgres

/// Callbacks whose retry budget ran out: listed for operators and replayed on request.
public enum DeadLetters {
    public struct Entry: Sendable, Equatable {
        public let callbackID: Int64
        public let channel: String
        public let receivedAt: Date
        public let attempts: Int32
        public let reason: String?
        public let lastError: String?
        public let outTradeNo: String?
        public let updatedAt: Date
    }

    public static func list(limit: Int = 100, channel: String? = nil, on connection: Connection) throws(PostgresError) -> [Entry] {
        try connection.query("""
            SELECT j.callback_id, j.channel, p.received_at, j.attempts, j.reason, j.last_error, j.out_trade_no,
                   j.updated_at
            FROM callback_jobs j JOIN callback_payloads p ON p.id = j.callback_id AND p.received_at = j.received_at
            WHERE j.state = 'dead' AND ($2::text IS NULL OR j.channel = $2)
            ORDER BY j.callback_id
            LIMIT $1
            """, [.int64(Int64(limit)), .text(channel)]).rows.map { row throws(PostgresError) in
            Entry(callbackID: try row.decode(0), channel: try row.decode(1), receivedAt: try row.decode(2),
                  attempts: try row.decode(3), reason: try row.decode(4), lastError: try row.decode(5),
                  outTradeNo: try row.decode(6), updatedAt: try row.decode(7))
        }
    }

    /// Puts dead callbacks back to `pending`, due now, with a fresh attempt budget, and
    /// logs a `replayed` attempt row naming `operatorName` and the reason it had died for.
    /// Returns the ids replayed; ids that are not dead are left alone.
    @discardableResult
    public static func replay(_ ids: [Int64], operatorName: String, on connection: Connection) throws(PostgresError) -> [Int64] {
        guard !ids.isEmpty else { return [] }
        return try connection.query("""
            WITH replayed AS (
                UPDATE callback_jobs
                SET state = 'pending', attempts = 0, next_attempt_at = now(), reason = NULL, updated_at = now()
                WHERE callback_id = ANY($1::bigint[]) AND state = 'dead'
                RETURNING callback_id, received_at, reason
            ), logged AS (
                INSERT INTO callback_attempts (callback_id, callback_received_at, attempt, worker, started_at, outcome,
                                               reason, error)
                SELECT callback_id, received_at, 0, $2, now(), 'replayed', reason, 'replayed by an operator'
                FROM replayed
            )
            SELECT callback_id FROM replayed ORDER BY callback_id
            """, [.int64Array(ids), .text(operatorName)]).rows.map { row throws(PostgresError) in try row.decode(0) }
    }
}
