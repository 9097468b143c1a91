public import Foundation
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

/// What the queue's tables hold on disk, per partition, and the maintainer's last run: for
/// `payhook status` and the gauges.
public struct QueueStorage: Sendable {
    /// One partition of all three tables (their sizes summed), or the default partitions.
    public struct Partition: Sendable {
        public let suffix: String
        public let lower: Date?
        public let upper: Date?
        public var isDefault: Bool { lower == nil }
        public let totalBytes: Int64
        public let indexBytes: Int64
        /// PostgreSQL's estimate of the callbacks in it (from the last vacuum or analyze; nil
        /// before the first).
        public let estimatedCallbacks: Int64?
        /// Counted exactly; filled by `read(countingStates: true)`.
        public var pending: Int64 = 0
        public var processing: Int64 = 0
        public var dead: Int64 = 0
    }

    public struct LastRun: Sendable {
        public let ranAt: Date
        public let partitionsCreated: Int64
        public let partitionsDropped: Int64
        public let callbacksCarried: Int64
        public let defaultPruned: Int64
        public let heldPartitions: Int64
        public let heldCallbacks: Int64
        public let error: String?

        /// `ranAt` as Unix seconds.
        public var ranAtSeconds: Double { ranAt.timeIntervalSince1970 }
    }

    /// Range partitions oldest first, then the default.
    public let partitions: [Partition]
    /// Each table's size with its indexes, over all its partitions.
    public let tableBytes: [(table: String, totalBytes: Int64, indexBytes: Int64)]
    public let lastRun: LastRun?

    /// Sizes and the last run; with `countingStates` also the unfinished and dead callbacks
    /// of each partition (read through the partial indexes).
    public static func read(countingStates: Bool, on connection: Connection) throws(PostgresError) -> QueueStorage {
        var partitions = try connection.query("""
            SELECT substr(partition, length(parent) + 1) AS suffix, min(lower_bound), min(upper_bound),
                   sum(total_bytes)::bigint, sum(index_bytes)::bigint,
                   sum(estimated_rows) FILTER (WHERE parent = 'callback_jobs')::bigint
            FROM queue_partitions GROUP BY suffix ORDER BY min(upper_bound) NULLS LAST
            """).rows.map { row throws(PostgresError) in
            Partition(suffix: try row.decode(0), lower: try row.decode(1), upper: try row.decode(2),
                      totalBytes: try row.decode(3), indexBytes: try row.decode(4), estimatedCallbacks: try row.decode(5))
        }
        if countingStates {
            let index = Dictionary(uniqueKeysWithValues: partitions.enumerated().map { ($1.suffix, $0) })
            for row in try connection.query("""
                SELECT substr(tableoid::regclass::text, length('callback_jobs') + 1), state, count(*) FROM callback_jobs
                WHERE state IN ('pending', 'processing', 'dead') GROUP BY tableoid, state
                """).rows {
                guard let at = index[try row.decode(0, as: String.self)] else { continue }
                let count: Int64 = try row.decode(2)
                switch try row.decode(1, as: String.self) {
                case "pending": partitions[at].pending = count
                case "processing": partitions[at].processing = count
                default: partitions[at].dead = count
                }
            }
        }
        let tables = try connection.query("""
            SELECT parent, sum(total_bytes)::bigint, sum(index_bytes)::bigint FROM queue_partitions
            GROUP BY parent ORDER BY parent
            """).rows.map { row throws(PostgresError) in
            (table: try row.decode(0, as: String.self), totalBytes: try row.decode(1, as: Int64.self),
             indexBytes: try row.decode(2, as: Int64.self))
        }
        let run = try connection.query("""
            SELECT ran_at, partitions_created, partitions_dropped, callbacks_carried, default_pruned, held_partitions,
                   held_callbacks, error
            FROM queue_maintenance
            """).rows.first.map { row throws(PostgresError) in
            LastRun(ranAt: try row.decode(0), partitionsCreated: Int64(try row.decode(1, as: Int32.self)),
                    partitionsDropped: Int64(try row.decode(2, as: Int32.self)), callbacksCarried: try row.decode(3),
                    defaultPruned: try row.decode(4), heldPartitions: Int64(try row.decode(5, as: Int32.self)),
                    heldCallbacks: try row.decode(6), error: try row.decode(7))
        }
        return QueueStorage(partitions: partitions, tableBytes: tables, lastRun: run)
    }
}
