public import Postgres

/// What `payhook status` shows: the queue by state and channel, how late the oldest due
/// row is, and recent throughput.
public struct QueueStatus: Sendable {
    public struct Count: Sendable, Equatable {
        public let channel: String
        public let state: String
        public let count: Int64
    }

    public let counts: [Count]
    /// Seconds since the oldest due row (pending and due, or an expired lease) became due.
    public let oldestDueSeconds: Double?
    public let dead: Int64
    /// Attempts finished as `done` in the last 60 seconds, per second.
    public let donePerSecondLastMinute: Double

    /// The queue's depth by state and how late the oldest due row is (the workers' gauges).
    public struct Depth: Sendable, Equatable {
        public let pending: Int64
        public let processing: Int64
        public let dead: Int64
        /// Seconds since the oldest due row became due (pending and due, or an expired lease).
        public let oldestDueSeconds: Double?
    }

    public static func depth(on connection: Connection) throws(PostgresError) -> Depth {
        let row = try connection.query("""
            SELECT (SELECT count(*) FROM callback_jobs WHERE state = 'pending'),
                   (SELECT count(*) FROM callback_jobs WHERE state = 'processing'),
                   (SELECT count(*) FROM callback_jobs WHERE state = 'dead'),
            \(oldestDueSQL)
            """)[0]
        return Depth(pending: try row.decode(0), processing: try row.decode(1), dead: try row.decode(2),
                     oldestDueSeconds: try row.decode(3))
    }

    /// The seconds since the oldest due row became due, as one column.
    static let oldestDueSQL = """
        greatest(
          (SELECT extract(epoch FROM now() - min(next_attempt_at))::float8 FROM callback_jobs
             WHERE state = 'pending' AND next_attempt_at <= now()),
          (SELECT extract(epoch FROM now() - min(locked_until))::float8 FROM callback_jobs
             WHERE state = 'processing' AND locked_until < now()))
        """

    public static func fetch(on connection: Connection) throws(PostgresError) -> QueueStatus {
        let counts = try connection.query("""
            SELECT channel, state, count(*) FROM callback_jobs GROUP BY channel, state ORDER BY channel, state
            """).rows.map { row throws(PostgresError) in
            Count(channel: try row.decode(0), state: try row.decode(1), count: try row.decode(2))
        }
        let summary = try connection.query("""
            SELECT
            \(oldestDueSQL),
              (SELECT count(*) FROM callback_jobs WHERE state = 'dead'),
              (SELECT count(*) FROM callback_attempts
                 WHERE finished_at > now() - interval '60 seconds' AND outcome = 'done')
            """)[0]
        return QueueStatus(counts: counts, oldestDueSeconds: try summary.decode(0), dead: try summary.decode(1),
                           donePerSecondLastMinute: Double(try summary.decode(2, as: Int64.self)) / 60)
    }
}
